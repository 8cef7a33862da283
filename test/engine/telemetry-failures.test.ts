import { trace, type Meter, type Tracer } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { afterEach, describe, expect, it } from 'vitest';
import { Telemetry } from '../../src/telemetry/recorder.ts';
import { BatchSpanProcessor, TracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace';
import { startTestEngine, TICKET, type TestEngine } from '../support/engine.ts';

/** Proxies that throw from every method: a meter or tracer as broken as one can be. */
function throwing<T extends object>(what: string): T {
  return new Proxy({} as T, { get: () => () => { throw new Error(`${what} is broken`); } });
}

let t: TestEngine | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function runSample(engine: TestEngine) {
  const { body } = await engine.post('/api/v1/workflows/support_triage/executions/sync', { input: TICKET });
  return body;
}

describe('telemetry never changes an outcome', () => {
  it('a meter whose every call throws', async () => {
    const failures: string[] = [];
    const telemetry = new Telemetry({ tracer: trace.getTracer('ok'), meter: throwing<Meter>('meter'), onFailure: (stage) => failures.push(stage) });
    t = await startTestEngine({ telemetry });
    const body = await runSample(t);
    expect(body).toMatchObject({ status: 'success', output: { category: 'billing' } });
    expect(failures).toContain('instrument');
  });

  it('a tracer whose every call throws', async () => {
    const failures: string[] = [];
    const telemetry = new Telemetry({ tracer: throwing<Tracer>('tracer'), meter: throwing<Meter>('meter'), onFailure: (stage) => failures.push(stage) });
    t = await startTestEngine({ telemetry });
    const body = await runSample(t);
    expect(body).toMatchObject({ status: 'success', output: { category: 'billing' }, trace_id: null });
    expect(failures).toContain('span');
  });

  it('a span exporter that throws and fails', async () => {
    let calls = 0;
    let spans = 0;
    const exporter: SpanExporter = {
      export(batch, done) {
        calls++;
        spans += batch.length;
        if (calls % 2) throw new Error('exporter exploded');
        done({ code: ExportResultCode.FAILED, error: new Error('collector away') });
      },
      shutdown: async () => {},
    };
    // The SDK's batch span processor, with batches of 8 so that a few runs make several exports.
    const provider = new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter, maxQueueSize: 64, maxExportBatchSize: 8, scheduledDelayMillis: 10 })] });
    const telemetry = new Telemetry({ tracer: provider.getTracer('x'), meter: throwing<Meter>('meter') });
    t = await startTestEngine({ telemetry });
    for (let i = 0; i < 3; i++) expect(await runSample(t)).toMatchObject({ status: 'success' });
    // The flush reports the last export's failure to its caller (the engine's sdk.ts settles it); the runs did not see any.
    await provider.forceFlush().catch(() => {});
    // Both kinds of failure happened, and the pipeline kept exporting after each.
    expect(calls).toBeGreaterThan(2);
    expect(spans).toBeGreaterThan(8);
    await provider.shutdown();
  });
});
