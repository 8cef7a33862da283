import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFaults, runLoad, type RequestResult } from '../../src/loadgen/load.ts';
import { startTestEngine, TEST_API_KEY, TEST_LOADGEN_KEY, type TestEngine } from '../support/engine.ts';

let t: TestEngine;
beforeAll(async () => {
  t = await startTestEngine();
});
afterAll(async () => t.close());

describe('the load generator', () => {
  it('parses fault mixes and rejects nonsense', () => {
    expect(parseFaults('slow=0.1, fail')).toEqual({ slow: 0.1, fail: 1 });
    expect(parseFaults(undefined)).toEqual({});
    expect(() => parseFaults('melt=0.1')).toThrow(/unknown fault "melt"/);
    expect(() => parseFaults('slow=2')).toThrow(/within 0\.\.1/);
  });

  it('model faults: the triage agent\'s scripted model fails its call, or loops until its iteration bound', async () => {
    const results: RequestResult[] = [];
    await runLoad({
      baseUrl: t.url, apiKey: TEST_LOADGEN_KEY, rate: 50, faults: { model_error: 0.5, model_loop: 0.5 }, durationMs: 20_000, maxRequests: 12, concurrency: 4,
      onResult: (r) => results.push(r),
    });
    expect(results.some((r) => r.scenario.endsWith(':model_error')) && results.some((r) => r.scenario.endsWith(':model_loop'))).toBe(true);
    const records = (await t.engine.list({ limit: 100, status: 'failed' })).filter((r) => r.target === 'support_triage');
    const codes = new Set(records.map((r) => r.error?.code));
    expect(codes).toEqual(new Set(['model_http_503', 'max_iterations']));
    const outcomes = await t.observed.metricPoints('agent_runs_total');
    const triage = (outcome: string) => outcomes.find((p) => p.attributes['gen_ai.agent.name'] === 'triage_classifier' && p.attributes['outcome'] === outcome)?.value ?? 0;
    expect(triage('model_error')).toBeGreaterThan(0);
    expect(triage('iteration_limit')).toBeGreaterThan(0);
  }, 60_000);

  it('drives every scenario against a real engine, bounded by count, with faults when asked', async () => {
    const results: RequestResult[] = [];
    const summary = await runLoad({
      baseUrl: t.url, apiKey: TEST_LOADGEN_KEY, rate: 50, faults: { fail: 0.5 }, durationMs: 20_000, maxRequests: 40, concurrency: 8, onResult: (r) => results.push(r),
    });
    expect(summary.sent).toBe(40);
    expect(summary.errors).toBe(0);
    const scenarios = new Set(results.map((r) => r.scenario.split(':')[0]));
    expect(scenarios).toEqual(new Set(['support_triage_sync', 'support_triage_async', 'quick_answer_sync', 'customer_lookup_task', 'faq_agent', 'bad_input']));
    expect(results.some((r) => r.scenario.endsWith(':fail'))).toBe(true);
    expect(results.filter((r) => r.scenario === 'bad_input').every((r) => r.status === 422)).toBe(true);
    const records = await t.engine.list({ limit: 100 });
    expect(records.every((r) => r.trigger === 'loadgen' && r.callerKeyId === 'loadgen')).toBe(true);
    expect(records.some((r) => r.status === 'failed')).toBe(true);
  }, 60_000);

  it('spreads its requests over several replicas in turn', async () => {
    const other = await startTestEngine();
    try {
      const before = (await t.engine.list({ limit: 1000 })).length;
      const summary = await runLoad({ baseUrl: [t.url, other.url], apiKey: TEST_LOADGEN_KEY, rate: 50, faults: {}, durationMs: 10_000, maxRequests: 10, concurrency: 4 });
      expect(summary.sent).toBe(10);
      // The bad_input scenario is refused before a record exists: count the answered requests instead.
      const accepted = (engine: TestEngine) => engine.engine.list({ limit: 1000 }).then((records) => records.length);
      expect((await accepted(t)) - before).toBeGreaterThanOrEqual(4);
      expect(await accepted(other)).toBeGreaterThanOrEqual(4);
    } finally {
      await other.close();
    }
  }, 60_000);

  it('the loadgen label comes from the key, not from a header: another key gets api, no key gets 401', async () => {
    const byOther = await runLoad({ baseUrl: t.url, apiKey: TEST_API_KEY, rate: 50, faults: {}, durationMs: 10_000, maxRequests: 6, concurrency: 4 });
    expect(byOther.byStatus['401']).toBeUndefined();
    const forged = await t.post('/api/v1/workflows/quick_answer/executions', { input: { question: 'q' } }, { 'x-switchyard-trigger': 'loadgen' });
    expect(forged.status).toBe(202);
    expect(forged.body).toMatchObject({ trigger: 'api', caller_key_id: 'tester' });
    const anonymous = await runLoad({ baseUrl: t.url, apiKey: undefined, rate: 50, faults: {}, durationMs: 10_000, maxRequests: 4, concurrency: 4 });
    expect(anonymous.byStatus).toEqual({ 401: 4 });
  }, 60_000);
});
