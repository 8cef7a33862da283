import { afterAll, expect, it } from 'vitest';
import { createTestTelemetry } from '../support/telemetry.ts';

const t = createTestTelemetry();
afterAll(() => t.shutdown());

const value = async (name: string) => {
  const points = await t.metricPoints(name);
  expect(points.map((p) => p.attributes)).toEqual([{}]);
  return points[0]!.value;
};
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it('the nodejs.eventloop.delay gauges report a blocked loop, then only the window since the previous export', async () => {
  // The first collection starts the monitor and reports nothing yet.
  expect(await t.metricPoints('nodejs_eventloop_delay_max_seconds')).toEqual([]);
  await pause(50);
  const blockedUntil = Date.now() + 150;
  while (Date.now() < blockedUntil) {
    // Hold the event loop, as a synchronous fork or lock wait would.
  }
  await pause(50);
  const max = await value('nodejs_eventloop_delay_max_seconds');
  expect(max).toBeGreaterThanOrEqual(0.14);

  // The next window has no stall: its max is far below the one above.
  await pause(200);
  const quietMax = await value('nodejs_eventloop_delay_max_seconds');
  expect(quietMax).toBeLessThan(max / 2);
  const p50 = await value('nodejs_eventloop_delay_p50_seconds');
  const p99 = await value('nodejs_eventloop_delay_p99_seconds');
  expect(p50).toBeGreaterThan(0);
  expect(p99).toBeGreaterThanOrEqual(p50);
});
