/**
 * An untrusted caller's trace context keeps its trace id and parent but loses its power to switch sampling off
 * (telemetry/instrumentations.ts, markSampled), in each format the engine's propagators read; the engine run
 * end to end with a sampler and trusted keys: test/telemetry/otel-env.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { markSampled } from '../../src/telemetry/instrumentations.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const marked = (headers: Record<string, string>) => {
  const copy: Record<string, string | string[] | undefined> = { ...headers };
  markSampled(copy);
  return copy;
};

describe('markSampled', () => {
  it('W3C traceparent: the sampled flag set, the other flags, trace id and parent kept; sampled stays sampled', () => {
    expect(marked({ traceparent: `00-${TRACE}-${SPAN}-00` }).traceparent).toBe(`00-${TRACE}-${SPAN}-01`);
    expect(marked({ traceparent: `00-${TRACE}-${SPAN}-02` }).traceparent).toBe(`00-${TRACE}-${SPAN}-03`);
    expect(marked({ traceparent: `00-${TRACE}-${SPAN}-01` }).traceparent).toBe(`00-${TRACE}-${SPAN}-01`);
    // Not a traceparent: left for the propagator to refuse.
    expect(marked({ traceparent: 'garbage' }).traceparent).toBe('garbage');
  });

  it('B3 single header and multi headers', () => {
    expect(marked({ b3: `${TRACE}-${SPAN}-0` }).b3).toBe(`${TRACE}-${SPAN}-1`);
    expect(marked({ b3: `${TRACE}-${SPAN}-0-${SPAN}` }).b3).toBe(`${TRACE}-${SPAN}-1-${SPAN}`);
    expect(marked({ b3: `${TRACE}-${SPAN}-d` }).b3).toBe(`${TRACE}-${SPAN}-d`);
    expect(marked({ b3: '0' })).not.toHaveProperty('b3');
    expect(marked({ 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN, 'x-b3-sampled': '0' })['x-b3-sampled']).toBe('1');
    expect(marked({ 'x-b3-sampled': 'false' })['x-b3-sampled']).toBe('1');
  });
});
