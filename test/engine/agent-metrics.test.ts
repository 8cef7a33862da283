/**
 * The agents' and models' telemetry: the semantic conventions' GenAI client metrics at every model call of
 * every provider (kind, unit, attributes, advisory buckets), the agent loop's turns, tool calls and
 * outcomes, and tokens and cost by agent, workflow and model (tokens x the price table).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_AGENT_NAME,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_TOKEN_TYPE,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  METRIC_GEN_AI_CLIENT_OPERATION_DURATION,
  METRIC_GEN_AI_CLIENT_TOKEN_USAGE,
} from '@opentelemetry/semantic-conventions/incubating';
import { DataPointType, InstrumentType } from '@opentelemetry/sdk-metrics';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ModelError, type ModelProvider, type ModelSession } from '../../src/engine/agent/model.ts';
import { OpenAiCompatibleProvider } from '../../src/engine/agent/openai-compatible.ts';
import { runAgent, type AgentRunContext } from '../../src/engine/agent/run-agent.ts';
import { ScriptedModelProvider } from '../../src/engine/agent/scripted.ts';
import type { AgentDefinition, Definitions } from '../../src/engine/definitions.ts';
import { PriceTable } from '../../src/engine/prices.ts';
import type { ToolDefinition, ToolRuntime } from '../../src/engine/runtime/tool-runtime.ts';
import { GEN_AI_DURATION_BUCKETS, GEN_AI_TOKEN_BUCKETS, METRICS } from '../../src/telemetry/catalog.ts';
import { createTestTelemetry, type MetricPoint, type TestTelemetry } from '../support/telemetry.ts';
import { startTestEngine, TICKET, type TestEngine } from '../support/engine.ts';

/** The scripted provider's token estimate: 4 characters a token. */
const tokens = (text: string) => Math.ceil(text.length / 4);
const MILLION = 1_000_000;

/** The boundaries the GenAI semantic conventions advise (gen-ai-metrics.md), written out, not imported. */
const CONVENTION_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
const CONVENTION_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

const sum = (points: MetricPoint[]) => points.reduce((total, p) => total + (p.sum ?? p.value), 0);
const where = (points: MetricPoint[], attributes: Record<string, string>) =>
  points.filter((p) => Object.entries(attributes).every(([k, v]) => p.attributes[k] === v));

describe('the GenAI client metrics follow the semantic conventions', () => {
  it('names, kinds, units and advisory buckets in the catalogue', () => {
    expect(GEN_AI_TOKEN_BUCKETS).toEqual(CONVENTION_TOKEN_BUCKETS);
    expect(GEN_AI_DURATION_BUCKETS).toEqual(CONVENTION_DURATION_BUCKETS);
    expect(METRICS.genAiClientTokenUsage).toMatchObject({
      otelName: 'gen_ai.client.token.usage', kind: 'histogram', unit: '{token}', name: 'gen_ai_client_token_usage',
    });
    expect(METRICS.genAiClientOperationDuration).toMatchObject({
      otelName: 'gen_ai.client.operation.duration', kind: 'histogram', unit: 's', name: 'gen_ai_client_operation_duration_seconds',
    });
    const attributeNames = (spec: { attributes: Record<string, { name: string; optional?: true }> }) =>
      Object.fromEntries(Object.values(spec.attributes).map((a) => [a.name, a.optional === true]));
    // name -> optional: the conventions' required attributes are always there; response model and error.type when known.
    expect(attributeNames(METRICS.genAiClientTokenUsage)).toEqual({
      'gen_ai.operation.name': false, 'gen_ai.provider.name': false, 'gen_ai.token.type': false, 'gen_ai.request.model': false, 'gen_ai.response.model': true,
    });
    expect(attributeNames(METRICS.genAiClientOperationDuration)).toEqual({
      'gen_ai.operation.name': false, 'gen_ai.provider.name': false, 'gen_ai.request.model': false, 'gen_ai.response.model': true, 'error.type': true,
    });
  });

  it('the instruments the SDK exports: histogram, unit and bucket boundaries', async () => {
    const observed = createTestTelemetry();
    try {
      const labels = { gen_ai_operation_name: 'chat', gen_ai_provider_name: 'openai', gen_ai_request_model: 'gpt-4o' } as const;
      observed.telemetry.record('genAiClientTokenUsage', 300, { ...labels, gen_ai_token_type: 'input' });
      observed.telemetry.record('genAiClientOperationDuration', 0.5, labels);
      const { resourceMetrics } = await observed.collectMetrics();
      const metrics = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
      const usage = metrics.find((m) => m.descriptor.name === METRIC_GEN_AI_CLIENT_TOKEN_USAGE)!;
      const duration = metrics.find((m) => m.descriptor.name === METRIC_GEN_AI_CLIENT_OPERATION_DURATION)!;
      expect(usage.descriptor).toMatchObject({ type: InstrumentType.HISTOGRAM, unit: '{token}' });
      expect(duration.descriptor).toMatchObject({ type: InstrumentType.HISTOGRAM, unit: 's' });
      expect(usage.dataPointType).toBe(DataPointType.HISTOGRAM);
      const usagePoint = (await observed.metricPoints('gen_ai_client_token_usage'))[0]!;
      const durationPoint = (await observed.metricPoints('gen_ai_client_operation_duration_seconds'))[0]!;
      expect(usagePoint.buckets!.boundaries).toEqual(CONVENTION_TOKEN_BUCKETS);
      expect(durationPoint.buckets!.boundaries).toEqual(CONVENTION_DURATION_BUCKETS);
      // 300 tokens fall in (256, 1024]; 0.5 s in (0.32, 0.64].
      expect(usagePoint.buckets!.counts[CONVENTION_TOKEN_BUCKETS.indexOf(1024)]).toBe(1);
      expect(durationPoint.buckets!.counts[CONVENTION_DURATION_BUCKETS.indexOf(0.64)]).toBe(1);
      // Dotted attribute names (Prometheus shows gen_ai_token_type); an unknown optional attribute is left off.
      expect(usagePoint.attributes).toEqual({
        [ATTR_GEN_AI_OPERATION_NAME]: 'chat', [ATTR_GEN_AI_PROVIDER_NAME]: 'openai', [ATTR_GEN_AI_REQUEST_MODEL]: 'gpt-4o', [ATTR_GEN_AI_TOKEN_TYPE]: 'input',
      });
      expect(durationPoint.attributes).not.toHaveProperty(ATTR_ERROR_TYPE);
      expect(durationPoint.attributes).not.toHaveProperty(ATTR_GEN_AI_RESPONSE_MODEL);
    } finally {
      await observed.shutdown();
    }
  });
});

describe('agents run through the engine (scripted provider)', () => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startTestEngine();
    await t.post('/api/v1/agents/faq_bot/executions/sync', { input: { question: 'price?' } });
    await t.post('/api/v1/workflows/support_triage/executions/sync', { input: TICKET });
  }, 30_000);
  afterAll(async () => t.close());

  it('faq_bot: one call, its tokens as the scripted model counts them, on the conventions\' metrics and spans', async () => {
    const input = tokens(`Answer the customer's question briefly: price? ${JSON.stringify({ question: 'price?' })}`);
    const output = tokens(JSON.stringify({ topic: 'pricing', answer: 'Plans are free, pro and enterprise; see the pricing page.' }));
    const faq = { [ATTR_GEN_AI_REQUEST_MODEL]: 'scripted-faq-v1' };
    const usage = where(await t.observed.metricPoints('gen_ai_client_token_usage'), faq);
    expect(usage.map((p) => p.attributes).sort((a, b) => String(a[ATTR_GEN_AI_TOKEN_TYPE]).localeCompare(String(b[ATTR_GEN_AI_TOKEN_TYPE])))).toEqual(
      ['input', 'output'].map((type) => ({
        [ATTR_GEN_AI_OPERATION_NAME]: 'chat', [ATTR_GEN_AI_PROVIDER_NAME]: 'switchyard.scripted', [ATTR_GEN_AI_TOKEN_TYPE]: type,
        [ATTR_GEN_AI_REQUEST_MODEL]: 'scripted-faq-v1', [ATTR_GEN_AI_RESPONSE_MODEL]: 'scripted-faq-v1',
      })),
    );
    expect(where(usage, { [ATTR_GEN_AI_TOKEN_TYPE]: 'input' })[0]).toMatchObject({ value: 1, sum: input });
    expect(where(usage, { [ATTR_GEN_AI_TOKEN_TYPE]: 'output' })[0]).toMatchObject({ value: 1, sum: output });

    const durations = where(await t.observed.metricPoints('gen_ai_client_operation_duration_seconds'), faq);
    expect(durations).toHaveLength(1);
    expect(durations[0]!.value).toBe(1);
    expect(durations[0]!.attributes).not.toHaveProperty(ATTR_ERROR_TYPE);

    const call = t.observed.spans().find((s) => s.name === 'agent.model_call' && s.attributes[ATTR_GEN_AI_REQUEST_MODEL] === 'scripted-faq-v1')!;
    expect(call.attributes).toMatchObject({
      [ATTR_GEN_AI_OPERATION_NAME]: 'chat', [ATTR_GEN_AI_PROVIDER_NAME]: 'switchyard.scripted', [ATTR_GEN_AI_RESPONSE_MODEL]: 'scripted-faq-v1',
      [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ['stop'], [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: input, [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: output,
    });
  });

  it('tokens and cost by agent, workflow and model: cost = tokens x the price table\'s price', async () => {
    const faqInput = tokens(`Answer the customer's question briefly: price? ${JSON.stringify({ question: 'price?' })}`);
    const tokenPoints = await t.observed.metricPoints('agent_model_tokens_total');
    const costPoints = await t.observed.metricPoints('agent_model_cost_usd_total');
    const faqTokens = where(tokenPoints, { [ATTR_GEN_AI_AGENT_NAME]: 'faq_bot', workflow_id: 'none', [ATTR_GEN_AI_TOKEN_TYPE]: 'input' });
    expect(faqTokens.map((p) => p.value)).toEqual([faqInput]);
    // examples/prices.yaml: scripted-faq-v1 costs 0.15 USD per million input tokens.
    const faqCost = where(costPoints, { [ATTR_GEN_AI_AGENT_NAME]: 'faq_bot', [ATTR_GEN_AI_REQUEST_MODEL]: 'scripted-faq-v1', [ATTR_GEN_AI_TOKEN_TYPE]: 'input' });
    expect(faqCost).toHaveLength(1);
    expect(faqCost[0]!.value).toBeCloseTo((faqInput * 0.15) / MILLION, 12);

    // The triage agent inside support_triage: its two calls' tokens (read from its spans) at 2.50 / 10.00 USD.
    const triageCalls = t.observed.spans().filter((s) => s.name === 'agent.model_call' && s.attributes[ATTR_GEN_AI_REQUEST_MODEL] === 'scripted-triage-v1');
    expect(triageCalls).toHaveLength(2);
    const spanTokens = (key: string) => triageCalls.reduce((total, s) => total + Number(s.attributes[key]), 0);
    const byTriage = { [ATTR_GEN_AI_AGENT_NAME]: 'triage_classifier', workflow_id: 'support_triage', [ATTR_GEN_AI_REQUEST_MODEL]: 'scripted-triage-v1' };
    const triageInput = sum(where(tokenPoints, { ...byTriage, [ATTR_GEN_AI_TOKEN_TYPE]: 'input' }));
    const triageOutput = sum(where(tokenPoints, { ...byTriage, [ATTR_GEN_AI_TOKEN_TYPE]: 'output' }));
    expect(triageInput).toBe(spanTokens(ATTR_GEN_AI_USAGE_INPUT_TOKENS));
    expect(triageOutput).toBe(spanTokens(ATTR_GEN_AI_USAGE_OUTPUT_TOKENS));
    expect(triageInput).toBeGreaterThan(0);
    expect(sum(where(costPoints, { ...byTriage, [ATTR_GEN_AI_TOKEN_TYPE]: 'input' }))).toBeCloseTo((triageInput * 2.5) / MILLION, 12);
    expect(sum(where(costPoints, { ...byTriage, [ATTR_GEN_AI_TOKEN_TYPE]: 'output' }))).toBeCloseTo((triageOutput * 10) / MILLION, 12);
    // The histogram's sum over all calls is the counter's total: the same tokens, counted once each way.
    expect(sum(await t.observed.metricPoints('gen_ai_client_token_usage'))).toBe(tokenPoints.reduce((total, p) => total + p.value, 0));
  });

  it('turns, tool calls and outcome per run, by agent', async () => {
    const runs = await t.observed.metricPoints('agent_runs_total');
    const outcome = (agent: string) => where(runs, { [ATTR_GEN_AI_AGENT_NAME]: agent }).map((p) => [p.attributes['outcome'], p.value]);
    expect(outcome('faq_bot')).toEqual([['final_answer', 1]]);
    expect(outcome('triage_classifier')).toEqual([['final_answer', 1]]);
    const turns = where(await t.observed.metricPoints('agent_run_model_turns'), { [ATTR_GEN_AI_AGENT_NAME]: 'triage_classifier' });
    const calls = where(await t.observed.metricPoints('agent_run_tool_calls'), { [ATTR_GEN_AI_AGENT_NAME]: 'triage_classifier' });
    // One run: a fetch_kb_article call, then the final answer.
    expect(turns.map((p) => [p.value, p.sum])).toEqual([[1, 2]]);
    expect(calls.map((p) => [p.value, p.sum])).toEqual([[1, 1]]);
  });
});

describe('an agent that hits its iteration bound', () => {
  it('counts iteration_limit with all its turns and tool calls', async () => {
    const f = await startTestEngine({ projectDir: 'test/fixtures/project' });
    try {
      const { body } = await f.post('/api/v1/agents/looper/executions/sync', { input: {} });
      expect(body).toMatchObject({ status: 'failed', error: { code: 'max_iterations' } });
      const labels = { [ATTR_GEN_AI_AGENT_NAME]: 'looper', outcome: 'iteration_limit' };
      expect(where(await f.observed.metricPoints('agent_runs_total'), labels).map((p) => p.value)).toEqual([1]);
      expect(where(await f.observed.metricPoints('agent_run_model_turns'), labels).map((p) => p.sum)).toEqual([2]);
      expect(where(await f.observed.metricPoints('agent_run_tool_calls'), labels).map((p) => p.sum)).toEqual([2]);
      // The fixture project has no prices.yaml: tokens are counted, no cost is.
      expect(sum(await f.observed.metricPoints('agent_model_tokens_total'))).toBeGreaterThan(0);
      expect(await f.observed.metricPoints('agent_model_cost_usd_total')).toEqual([]);
    } finally {
      await f.close();
    }
  });
});

describe('scripted turns that fail or repeat (the faults the sample project and the load generator use)', () => {
  it('a `repeat` turn asks for its tool on every call until the iteration bound; an `error` turn fails the call with its type', async () => {
    const f = await startTestEngine({ projectDir: 'test/fixtures/project' });
    try {
      const looped = await f.post('/api/v1/agents/repeater/executions/sync', { input: {} });
      expect(looped.body).toMatchObject({ status: 'failed', error: { code: 'max_iterations' } });
      const stopped = await f.post('/api/v1/agents/repeater/executions/sync', { input: { stop: 'yes' } });
      expect(stopped.body).toMatchObject({ status: 'success', output: 'stopped' });
      const failed = await f.post('/api/v1/agents/flaky_model/executions/sync', { input: {} });
      expect(failed.body).toMatchObject({ status: 'failed', error: { code: 'model_http_503' } });

      const repeater = (outcome: string) => ({ [ATTR_GEN_AI_AGENT_NAME]: 'repeater', outcome });
      expect(where(await f.observed.metricPoints('agent_run_model_turns'), repeater('iteration_limit')).map((p) => p.sum)).toEqual([3]);
      expect(where(await f.observed.metricPoints('agent_run_tool_calls'), repeater('iteration_limit')).map((p) => p.sum)).toEqual([3]);
      expect(where(await f.observed.metricPoints('agent_runs_total'), { [ATTR_GEN_AI_AGENT_NAME]: 'flaky_model' }).map((p) => [p.attributes['outcome'], p.value]))
        .toEqual([['model_error', 1]]);
      const flaky = where(await f.observed.metricPoints('gen_ai_client_operation_duration_seconds'), { [ATTR_GEN_AI_REQUEST_MODEL]: 'flaky' });
      expect(flaky.map((p) => [p.attributes[ATTR_ERROR_TYPE], p.value])).toEqual([['model_http_503', 1]]);
    } finally {
      await f.close();
    }
  });
});

/** runAgent on its own, with a provider and a runtime made to fail. */
describe('failures of model calls and tool calls', () => {
  const tool: ToolDefinition = { id: 'probe', description: 'a tool', script: '/nonexistent.ts', timeoutMs: 1_000, config: {}, env: [] };
  const agent: AgentDefinition = {
    id: 'prober', description: 'probes', instructions: 'probe', model: { provider: 'scripted', name: 'probe-model' },
    tools: ['probe'], max_iterations: 3, timeout_ms: 10_000, script: [],
  };
  const definitions: Definitions = { tools: new Map([['probe', tool]]), agents: new Map([['prober', agent]]), tasks: new Map(), workflows: new Map() };
  const provider = (next: ModelSession['next']): ModelProvider => ({ name: 'scripted', genAiProviderName: 'switchyard.scripted', open: () => ({ next }) });
  const throwingRuntime = { execute: async () => { throw new Error('runtime broke'); } } as unknown as ToolRuntime;
  let observed: TestTelemetry;
  afterEach(async () => observed.shutdown());
  const context = (model: ModelProvider, extra: Partial<AgentRunContext> = {}): AgentRunContext => {
    observed = createTestTelemetry();
    return {
      telemetry: observed.telemetry, runtime: throwingRuntime, definitions, providers: new Map([['scripted', model]]),
      executionId: 'x', signal: new AbortController().signal, ...extra,
    };
  };
  const durationErrors = async () => (await observed.metricPoints('gen_ai_client_operation_duration_seconds')).map((p) => [p.attributes[ATTR_ERROR_TYPE], p.value]);
  const outcomes = async () => (await observed.metricPoints('agent_runs_total')).map((p) => [p.attributes['outcome'], p.value]);

  it('a model error: duration with error.type, no token usage, outcome model_error, the span with the same error.type', async () => {
    const ctx = context(provider(async () => { throw new ModelError('model answered HTTP 503', 'model_http_503'); }));
    await expect(runAgent('prober', {}, ctx)).rejects.toMatchObject({ code: 'model_http_503' });
    expect(await durationErrors()).toEqual([['model_http_503', 1]]);
    expect(await observed.metricPoints('gen_ai_client_token_usage')).toEqual([]);
    expect(await outcomes()).toEqual([['model_error', 1]]);
    const span = observed.spans().find((s) => s.name === 'agent.model_call')!;
    expect(span.attributes[ATTR_ERROR_TYPE]).toBe('model_http_503');
  });

  it('a tool call whose runtime throws: outcome tool_error after one turn and one tool call', async () => {
    const ctx = context(provider(async () => ({ toolCalls: [{ id: 'c1', name: 'probe', arguments: {} }], usage: { inputTokens: 10, outputTokens: 3 } })));
    await expect(runAgent('prober', {}, ctx)).rejects.toThrow('runtime broke');
    expect(await outcomes()).toEqual([['tool_error', 1]]);
    expect((await observed.metricPoints('agent_run_tool_calls')).map((p) => p.sum)).toEqual([1]);
    // The model call itself succeeded: no error.type, its usage recorded, no response model (the provider gave none).
    expect(await durationErrors()).toEqual([[undefined, 1]]);
    expect((await observed.metricPoints('gen_ai_client_token_usage')).map((p) => [p.attributes[ATTR_GEN_AI_TOKEN_TYPE], p.sum, ATTR_GEN_AI_RESPONSE_MODEL in p.attributes]))
      .toEqual([['input', 10, false], ['output', 3, false]]);
  });

  it('a canceled run: the model call ends with error.type canceled, the run with outcome canceled', async () => {
    const abort = new AbortController();
    const ctx = context(provider((request) => new Promise((_resolve, reject) => {
      request.signal.addEventListener('abort', () => reject(request.signal.reason), { once: true });
      setTimeout(() => abort.abort(new Error('canceled by the test')), 10);
    })), { signal: abort.signal });
    await expect(runAgent('prober', {}, ctx)).rejects.toThrow('canceled by the test');
    expect(await durationErrors()).toEqual([['canceled', 1]]);
    expect(await outcomes()).toEqual([['canceled', 1]]);
  });

  it('a model the price table lacks: tokens counted, no cost series; a priced one: tokens x price', async () => {
    const answer = async () => ({ toolCalls: [], final: 'ok', usage: { inputTokens: 1_000, outputTokens: 250 } });
    const unpriced = context(provider(answer), { prices: new PriceTable(new Map([['other-model', { inputUsdPerMillion: 1, outputUsdPerMillion: 1 }]])), workflowId: 'wf' });
    await runAgent('prober', {}, unpriced);
    expect((await observed.metricPoints('agent_model_tokens_total')).map((p) => [p.attributes['workflow_id'], p.attributes[ATTR_GEN_AI_TOKEN_TYPE], p.value]))
      .toEqual([['wf', 'input', 1_000], ['wf', 'output', 250]]);
    expect(await observed.metricPoints('agent_model_cost_usd_total')).toEqual([]);
    await observed.shutdown();

    const priced = context(provider(answer), { prices: new PriceTable(new Map([['probe-model', { inputUsdPerMillion: 3, outputUsdPerMillion: 15 }]])) });
    await runAgent('prober', {}, priced);
    const cost = await observed.metricPoints('agent_model_cost_usd_total');
    expect(cost.map((p) => [p.attributes[ATTR_GEN_AI_TOKEN_TYPE], p.attributes[ATTR_GEN_AI_REQUEST_MODEL], p.attributes['workflow_id']]))
      .toEqual([['input', 'probe-model', 'none'], ['output', 'probe-model', 'none']]);
    expect(cost[0]!.value).toBeCloseTo(0.003, 12);
    expect(cost[1]!.value).toBeCloseTo(0.00375, 12);
  });
});

describe('the openai-compatible provider reports what the API returns', () => {
  let server: Server;
  let baseUrl: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({
          id: 'chatcmpl-42', model: 'llama3.2-2024-09',
          choices: [{ finish_reason: 'stop', message: { role: 'assistant', content: 'fine' } }],
          usage: { prompt_tokens: 11, completion_tokens: 7 },
        }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  afterAll(async () => new Promise((resolve) => server.close(resolve)));

  it('provider openai, the response model, id and finish reasons, the usage', async () => {
    const observed = createTestTelemetry();
    try {
      const llm: AgentDefinition = {
        id: 'llm', description: 'a model over HTTP', instructions: 'answer', model: { provider: 'openai-compatible', name: 'llama3.2', base_url: baseUrl },
        tools: [], max_iterations: 2, timeout_ms: 10_000, script: [],
      };
      const definitions: Definitions = { tools: new Map(), agents: new Map([['llm', llm]]), tasks: new Map(), workflows: new Map() };
      await runAgent('llm', 'hi', {
        telemetry: observed.telemetry, runtime: {} as ToolRuntime, definitions, executionId: 'x', signal: new AbortController().signal,
        providers: new Map<string, ModelProvider>([['openai-compatible', new OpenAiCompatibleProvider()], ['scripted', new ScriptedModelProvider()]]),
      });
      const model = { [ATTR_GEN_AI_PROVIDER_NAME]: 'openai', [ATTR_GEN_AI_REQUEST_MODEL]: 'llama3.2', [ATTR_GEN_AI_RESPONSE_MODEL]: 'llama3.2-2024-09' };
      const usage = await observed.metricPoints('gen_ai_client_token_usage');
      expect(usage.map((p) => [p.attributes[ATTR_GEN_AI_TOKEN_TYPE], p.sum])).toEqual([['input', 11], ['output', 7]]);
      for (const point of usage) expect(point.attributes).toMatchObject(model);
      expect((await observed.metricPoints('gen_ai_client_operation_duration_seconds'))[0]!.attributes).toMatchObject(model);
      const span = observed.spans().find((s) => s.name === 'agent.model_call')!;
      expect(span.attributes).toMatchObject({
        ...model, [ATTR_GEN_AI_RESPONSE_ID]: 'chatcmpl-42', [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ['stop'],
        [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 11, [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 7,
      });
    } finally {
      await observed.shutdown();
    }
  });
});
