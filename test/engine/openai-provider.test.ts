import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanStatusCode } from '@opentelemetry/api';
import { modelEndpoint, OpenAiCompatibleProvider, retryAfterMs } from '../../src/engine/agent/openai-compatible.ts';
import { runAgent } from '../../src/engine/agent/run-agent.ts';
import type { AgentDefinition } from '../../src/engine/definitions.ts';
import { ExecutionFailure } from '../../src/engine/errors.ts';
import type { ToolRuntime } from '../../src/engine/runtime/tool-runtime.ts';
import { createTestTelemetry } from '../support/telemetry.ts';
import { ScriptedModelProvider } from '../../src/engine/agent/scripted.ts';
import type { ModelError, ModelProvider } from '../../src/engine/agent/model.ts';
import { loadDefinitions } from '../../src/engine/definitions.ts';
import { loadConfig } from '../../src/config.ts';
import { startTestEngine, type TestEngine } from '../support/engine.ts';

/**
 * A small local server speaking the chat-completions protocol (a stand-in for Ollama or vLLM, which
 * cannot run here): it asks for one tool call, then answers with the tool's result in its final message.
 */
let server: Server;
let baseUrl: string;
const requests: any[] = [];
beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const request = JSON.parse(body);
      requests.push({ ...request, authorization: req.headers.authorization });
      const toolMessage = request.messages.find((m: any) => m.role === 'tool');
      const message = toolMessage
        ? { role: 'assistant', content: JSON.stringify({ answer: `plan is ${JSON.parse(toolMessage.content).customer.plan}` }) }
        : { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup_customer', arguments: '{"email":"grace@cobol.example"}' } }] };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ choices: [{ message }], usage: { prompt_tokens: 11, completion_tokens: 7 } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(async () => new Promise((done) => server.close(done)));

/**
 * The sample project's assistant_llm with its model.base_url pointed elsewhere (the sample's own is a
 * local Ollama), and the two tools it uses.
 */
const projects: string[] = [];
afterAll(() => projects.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
function projectWithModelAt(url: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-llm-'));
  projects.push(dir);
  mkdirSync(join(dir, 'agents'));
  mkdirSync(join(dir, 'tools'));
  const agent = readFileSync('examples/agents/assistant_llm.yaml', 'utf8');
  if (!/^  base_url: .*$/m.test(agent)) throw new Error('expected examples/agents/assistant_llm.yaml to set model.base_url');
  writeFileSync(join(dir, 'agents', 'assistant_llm.yaml'), agent.replace(/^  base_url: .*$/m, `  base_url: ${url}`));
  for (const tool of ['lookup_customer', 'fetch_kb_article']) {
    const yaml = readFileSync(`examples/tools/${tool}.yaml`, 'utf8');
    writeFileSync(join(dir, 'tools', `${tool}.yaml`), yaml.replace(/^script: (.*)$/m, (_, script: string) => `script: ${resolve('examples/tools', script)}`));
  }
  return dir;
}

describe('the openai-compatible provider', () => {
  let t: TestEngine;
  afterAll(async () => t?.close());

  it('runs the agent loop over HTTP: tool call, tool result, final answer, gen_ai usage', async () => {
    t = await startTestEngine({
      projectDir: projectWithModelAt(baseUrl),
      providers: new Map<string, ModelProvider>([['scripted', new ScriptedModelProvider()], ['openai-compatible', new OpenAiCompatibleProvider({ defaultBaseUrl: baseUrl, defaultApiKey: 'sk-test' })]]),
    });
    const { body } = await t.post('/api/v1/agents/assistant_llm/executions/sync', { input: 'what plan is grace on?' });
    expect(body).toMatchObject({ status: 'success', output: { answer: 'plan is pro' } });
    expect(requests).toHaveLength(2);
    expect(requests[0]).toMatchObject({ model: 'llama3.2', authorization: 'Bearer sk-test' });
    expect(requests[0].tools.map((t: any) => t.function.name).sort()).toEqual(['fetch_kb_article', 'lookup_customer']);
    expect(requests[1].messages.at(-1)).toMatchObject({ role: 'tool', tool_call_id: 'call_1' });
    const loop = t.observed.spans().find((s) => s.name === 'agent.execute_sync')!;
    expect(loop.attributes).toMatchObject({ 'gen_ai.usage.input_tokens': 22, 'gen_ai.usage.output_tokens': 14, 'switchyard.agent.iterations': 2 });
  });

  it('a model that is unreachable fails the run with a clear code', async () => {
    const t2 = await startTestEngine({
      projectDir: projectWithModelAt('http://127.0.0.1:9/v1'),
      providers: new Map<string, ModelProvider>([['openai-compatible', new OpenAiCompatibleProvider()]]),
    });
    try {
      const { body } = await t2.post('/api/v1/agents/assistant_llm/executions/sync', { input: 'hi' });
      expect(body).toMatchObject({ status: 'failed', error: { code: 'model_unreachable' } });
      expect(body.error.message).toContain('127.0.0.1:9');
    } finally {
      await t2.close();
    }
  });
});

/**
 * How the provider meets a server that misbehaves: a real HTTP server on 127.0.0.1 whose behaviour the
 * agent's model name selects. Each call must end with a ModelError whose code is the call's error.type, on
 * the model call's span and on gen_ai.client.operation.duration alike, and never with an exception the
 * engine did not expect.
 */
describe('the openai-compatible provider against a misbehaving server', () => {
  const held: ServerResponse[] = [];
  const seen: { model: string; at: number }[] = [];
  let misbehaving: Server;
  let url: string;
  const completion = (model: string) => JSON.stringify({
    id: 'chatcmpl-1', model, choices: [{ finish_reason: 'stop', message: { role: 'assistant', content: 'fine' } }],
    usage: { prompt_tokens: 5, completion_tokens: 2 },
  });
  beforeAll(async () => {
    misbehaving = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const { model } = JSON.parse(body) as { model: string };
        const earlier = seen.filter((s) => s.model === model).length;
        seen.push({ model, at: Date.now() });
        const json = (status: number, text: string, headers: Record<string, string> = {}) =>
          res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(text);
        switch (model) {
          case 'rate-limited-once': return earlier === 0 ? json(429, '{"error":"slow down"}', { 'retry-after': '1' }) : json(200, completion(model));
          case 'rate-limited-always': return json(429, '{"error":"slow down"}', { 'retry-after': '0' });
          case 'rate-limited-for-an-hour': return json(429, '{"error":"quota"}', { 'retry-after': '3600' });
          case 'server-error': return json(503, '{"error":"overloaded"}');
          case 'never-answers': return void held.push(res);
          case 'stalls-mid-body': {
            res.writeHead(200, { 'content-type': 'application/json' }).write('{"choices": [');
            return void held.push(res);
          }
          case 'html': return res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>502 Bad Gateway</body></html>');
          case 'no-choices': return json(200, '{"object": "chat.completion", "choices": []}');
          case 'tool-call-without-name': return json(200, JSON.stringify({ choices: [{ message: { tool_calls: [{ id: 'c1', function: { arguments: '{}' } }] } }] }));
          case 'tool-arguments-not-json': return json(200, JSON.stringify({ choices: [{ message: { tool_calls: [{ id: 'c1', function: { name: 'x', arguments: '{oops' } }] } }] }));
          case 'streams-anyway': {
            res.writeHead(200, { 'content-type': 'text/event-stream' });
            res.write('data: {"choices":[{"delta":{"content":"fi"}}]}\n\n');
            return res.end('data: [DONE]\n\n');
          }
          case 'usage-not-numbers': return json(200, JSON.stringify({ choices: [{ message: { content: 'fine' } }], usage: { prompt_tokens: 'many', completion_tokens: -1 } }));
          default: return json(200, completion(model));
        }
      });
    });
    await new Promise<void>((done) => misbehaving.listen(0, '127.0.0.1', done));
    url = `http://127.0.0.1:${(misbehaving.address() as AddressInfo).port}/v1`;
  });
  afterAll(async () => {
    for (const res of held) res.destroy();
    misbehaving.closeAllConnections();
    await new Promise((done) => misbehaving.close(done));
  });

  const agentFor = (name: string, model: Partial<AgentDefinition['model']> = {}): AgentDefinition => ({
    id: 'llm', description: 'a model over HTTP', instructions: 'answer', tools: [], max_iterations: 2, timeout_ms: 60_000, script: [],
    model: { provider: 'openai-compatible', name, base_url: url, ...model },
  });
  /** One agent run against the server; what the run threw, the model call's span and the duration points. */
  async function call(agent: AgentDefinition) {
    const observed = createTestTelemetry();
    try {
      const error = await runAgent('llm', 'hi', {
        telemetry: observed.telemetry, runtime: {} as ToolRuntime, executionId: 'x', signal: new AbortController().signal,
        definitions: { tools: new Map(), agents: new Map([['llm', agent]]), tasks: new Map(), workflows: new Map() },
        providers: new Map<string, ModelProvider>([['openai-compatible', new OpenAiCompatibleProvider()]]),
      }).then(() => undefined, (thrown: unknown) => thrown as { code?: string; message: string });
      const spans = observed.spans().filter((s) => s.name === 'agent.model_call');
      const durations = await observed.metricPoints('gen_ai_client_operation_duration_seconds');
      const usage = await observed.metricPoints('gen_ai_client_token_usage');
      return { error, spans, durations, usage };
    } finally {
      await observed.shutdown();
    }
  }
  /** The call failed with `type`: the run's error code, the span's error.type and status, the duration metric's error.type. */
  function expectFailed(result: Awaited<ReturnType<typeof call>>, type: string): void {
    expect(result.error).toBeInstanceOf(ExecutionFailure);
    expect(result.error!.code).toBe(type);
    expect(result.spans).toHaveLength(1);
    expect(result.spans[0]!.attributes['error.type']).toBe(type);
    expect(result.spans[0]!.status.code).toBe(SpanStatusCode.ERROR);
    expect(result.durations.map((p) => [p.attributes['error.type'], p.value])).toEqual([[type, 1]]);
    expect(result.usage).toEqual([]);
  }

  it('429 with Retry-After: waits as long as the server asks, retries, and the call succeeds (one duration point, no error.type)', async () => {
    const result = await call(agentFor('rate-limited-once'));
    expect(result.error).toBeUndefined();
    const [first, second] = seen.filter((s) => s.model === 'rate-limited-once');
    expect(second!.at - first!.at, 'the retry waited for Retry-After: 1').toBeGreaterThanOrEqual(900);
    expect(result.spans[0]!.attributes).toMatchObject({ 'switchyard.model.retries': 1, 'gen_ai.response.model': 'rate-limited-once' });
    expect(result.durations.map((p) => [p.attributes['error.type'], p.value])).toEqual([[undefined, 1]]);
    expect(result.usage.map((p) => p.sum)).toEqual([5, 2]);
  });

  it('429 every time: the retries are bounded (model.max_retries), then model_http_429', async () => {
    const result = await call(agentFor('rate-limited-always', { max_retries: 2 }));
    expectFailed(result, 'model_http_429');
    expect(result.error!.message).toContain('after 2 retries');
    expect(seen.filter((s) => s.model === 'rate-limited-always')).toHaveLength(3);
  });

  it('429 with a Retry-After beyond the call\'s timeout: model_http_429 at once, saying how long the server asked to wait', async () => {
    const result = await call(agentFor('rate-limited-for-an-hour', { timeout_ms: 5_000 }));
    expectFailed(result, 'model_http_429');
    expect(result.error!.message).toContain('asked to wait 3600000 ms');
    expect(seen.filter((s) => s.model === 'rate-limited-for-an-hour')).toHaveLength(1);
  });

  it('5xx: model_http_503, not retried, with what the server said', async () => {
    const result = await call(agentFor('server-error'));
    expectFailed(result, 'model_http_503');
    expect(result.error!.message).toContain('overloaded');
    expect(seen.filter((s) => s.model === 'server-error')).toHaveLength(1);
  });

  it('a server that never answers: the call gives up at its own timeout (model.timeout_ms) with error.type timeout', async () => {
    const before = held.length;
    const result = await call(agentFor('never-answers', { timeout_ms: 300 }));
    expectFailed(result, 'timeout');
    expect(result.error!.message).toContain('within 300 ms');
    // The server still holds the request: the client gave up, not the server.
    expect(held.length).toBe(before + 1);
    expect(held.at(-1)!.writableEnded).toBe(false);
    expect(result.durations[0]!.sum!).toBeGreaterThanOrEqual(0.3);
  });

  it('a server that sends half an answer and stalls: timeout too (the body is inside the call\'s time)', async () => {
    expectFailed(await call(agentFor('stalls-mid-body', { timeout_ms: 300 })), 'timeout');
  });

  it.each([
    ['html', 'not JSON'],
    ['no-choices', 'no choices[0].message'],
    ['tool-call-without-name', 'tool_calls[0] has no function.name'],
    ['tool-arguments-not-json', 'arguments that are not JSON'],
    ['streams-anyway', 'a stream'],
  ])('garbage (%s): model_protocol, saying what is wrong', async (model, says) => {
    const result = await call(agentFor(model));
    expectFailed(result, 'model_protocol');
    expect(result.error!.message).toContain(says);
  });

  it('usage that is not token counts: the answer is used, no usage is recorded rather than a wrong one', async () => {
    const result = await call(agentFor('usage-not-numbers'));
    expect(result.error).toBeUndefined();
    expect(result.usage).toEqual([]);
    expect(result.spans[0]!.attributes).not.toHaveProperty('gen_ai.usage.input_tokens');
  });

  it('a closed port: model_unreachable, naming why', async () => {
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((done) => closed.close(done));
    const result = await call({ ...agentFor('anything'), model: { provider: 'openai-compatible', name: 'anything', base_url: `http://127.0.0.1:${port}/v1` } });
    expectFailed(result, 'model_unreachable');
    expect(result.error!.message).toContain('ECONNREFUSED');
  });

  it('through the engine: every failure is a failed run with its code, and the engine goes on serving', async () => {
    const dir = projectWithModelAt(url);
    const models = ['html', 'server-error', 'rate-limited-always', 'no-choices'];
    for (const model of models) {
      writeFileSync(join(dir, 'agents', `llm_${model.replaceAll('-', '_')}.yaml`), [
        `id: llm_${model.replaceAll('-', '_')}`, 'description: a misbehaving model', 'instructions: answer',
        'model:', '  provider: openai-compatible', `  name: ${model}`, `  base_url: ${url}`, '  max_retries: 0', '',
      ].join('\n'));
    }
    const t3 = await startTestEngine({ projectDir: dir, providers: new Map<string, ModelProvider>([['openai-compatible', new OpenAiCompatibleProvider()]]) });
    try {
      const codes: string[] = [];
      for (const model of models) {
        const { status, body } = await t3.post(`/api/v1/agents/llm_${model.replaceAll('-', '_')}/executions/sync`, { input: 'hi' });
        expect(status).toBe(200);
        expect(body.status).toBe('failed');
        codes.push(body.error.code);
      }
      expect(codes).toEqual(['model_protocol', 'model_http_503', 'model_http_429', 'model_protocol']);
      // The run's span carries the same error.type as the model call under it.
      const runs = t3.observed.spans().filter((s) => s.name === 'agent.execute');
      expect(runs.map((s) => s.attributes['error.type'])).toEqual(codes);
      expect((await t3.get('/readyz')).status).toBe(200);
      const healthy = await t3.post('/api/v1/agents/assistant_llm/executions/sync', { input: 'hi' });
      expect(healthy.body.status).toBe('success');
    } finally {
      await t3.close();
    }
  });
});

describe('Retry-After', () => {
  it('reads delta-seconds and HTTP dates; waits 1 s when absent or unreadable', () => {
    const now = Date.parse('2026-12-01T10:00:00Z');
    expect(retryAfterMs('3', now)).toBe(3_000);
    expect(retryAfterMs('0', now)).toBe(0);
    expect(retryAfterMs('Tue, 01 Dec 2026 10:00:05 GMT', now)).toBe(5_000);
    expect(retryAfterMs('Tue, 01 Dec 2026 09:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs(null, now)).toBe(1_000);
    expect(retryAfterMs('soon', now)).toBe(1_000);
  });
});

/**
 * The model API key: where it goes, and that it never comes back. A real local HTTP server stands in for an
 * OpenAI-compatible provider (none can run here): it records the Authorization header of every call, and
 * for the model `rejects-the-key` answers 401 the way OpenAI does, quoting the key it was sent (raw, and
 * URL-encoded as some gateways log it).
 */
describe('the model API key', () => {
  const DEFAULT_KEY = 'sk-default-3b8e6c0f9a1d47e2';
  const received: { model: string; authorization: string | undefined }[] = [];
  let keyed: Server;
  let port: number;
  beforeAll(async () => {
    keyed = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const { model } = JSON.parse(body) as { model: string };
        const authorization = req.headers.authorization;
        received.push({ model, authorization });
        res.setHeader('content-type', 'application/json');
        if (model === 'rejects-the-key') {
          res.statusCode = 401;
          const key = (authorization ?? '').replace(/^Bearer /, '');
          return res.end(JSON.stringify({ error: { message: `Incorrect API key provided: ${authorization}. (${encodeURIComponent(key)}) You can find your API key at https://platform.example/account/api-keys.`, type: 'invalid_request_error' } }));
        }
        if (model === 'passes-the-token') {
          // First turn: hand the caller's token to the tool; second: fail, quoting the whole request (as
          // some gateways do on a 400), the tool's result and the caller's input included.
          const request = JSON.parse(body) as { messages: { role: string; content: string }[] };
          if (!request.messages.some((m) => m.role === 'tool')) {
            const { token } = JSON.parse(request.messages.find((m) => m.role === 'user')!.content) as { token: string };
            return res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'echo_token', arguments: JSON.stringify({ token }) } }] } }] }));
          }
          res.statusCode = 400;
          return res.end(JSON.stringify({ error: { message: `bad request: ${body}` } }));
        }
        res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: 'fine' } }] }));
      });
    });
    await new Promise<void>((done) => keyed.listen(0, '127.0.0.1', done));
    port = (keyed.address() as AddressInfo).port;
  });
  afterAll(async () => {
    keyed.closeAllConnections();
    await new Promise((done) => keyed.close(done));
  });

  const defaultUrl = () => `http://127.0.0.1:${port}/v1`;
  const agentAt = (name: string, model: Partial<AgentDefinition['model']>): AgentDefinition => ({
    id: 'llm', description: 'a model over HTTP', instructions: 'answer', tools: [], max_iterations: 2, timeout_ms: 60_000, script: [],
    model: { provider: 'openai-compatible', name, ...model },
  });
  /** The Authorization header the stand-in received for one call of `agent` (undefined: none sent). */
  async function sentKey(agent: AgentDefinition, env: NodeJS.ProcessEnv = {}): Promise<string | undefined> {
    const provider = new OpenAiCompatibleProvider({ defaultBaseUrl: defaultUrl(), defaultApiKey: DEFAULT_KEY, env });
    const before = received.length;
    await provider.open(agent).next({ messages: [{ role: 'user', content: 'hi' }], tools: [], context: {}, signal: new AbortController().signal });
    expect(received.length).toBe(before + 1);
    return received.at(-1)!.authorization;
  }

  it('goes only to SWITCHYARD_MODEL_BASE_URL\'s origin; an agent elsewhere sends its own key or none', async () => {
    expect(await sentKey(agentAt('m', {}))).toBe(`Bearer ${DEFAULT_KEY}`);
    expect(await sentKey(agentAt('m', { base_url: `http://127.0.0.1:${port}/other/v1` }))).toBe(`Bearer ${DEFAULT_KEY}`);
    // Another origin (the same server under another host name is another origin to a browser and to us).
    expect(await sentKey(agentAt('m', { base_url: `http://localhost:${port}/v1` }))).toBeUndefined();
    expect(await sentKey(agentAt('m', { base_url: `http://localhost:${port}/v1`, api_key_env: 'OWN_MODEL_KEY' }), { OWN_MODEL_KEY: 'sk-own-env-0123456789' })).toBe('Bearer sk-own-env-0123456789');
    const file = join(mkdtempSync(join(tmpdir(), 'switchyard-agent-key-')), 'key');
    writeFileSync(file, 'sk-own-file-0123456789\n');
    expect(await sentKey(agentAt('m', { base_url: `http://localhost:${port}/v1`, api_key_file: file }))).toBe('Bearer sk-own-file-0123456789');
    // A key named but missing is a configuration error, not a call without a key.
    const missing = await sentKey(agentAt('m', { base_url: `http://localhost:${port}/v1`, api_key_env: 'UNSET_MODEL_KEY' })).then(() => undefined, (e: unknown) => e as ModelError);
    expect(missing).toMatchObject({ code: 'model_config' });
    expect(missing!.message).toContain('UNSET_MODEL_KEY');
  });

  it('the sample\'s local Ollama agent gets no key when the default points elsewhere', () => {
    const definitions = loadDefinitions('examples', { modelBaseUrl: 'https://models.example.com/v1', modelApiKey: true });
    const agent = definitions.agents.get('assistant_llm')!;
    expect(agent.model.base_url).toBe('http://localhost:11434/v1');
    const endpoint = modelEndpoint(agent, { defaultBaseUrl: 'https://models.example.com/v1', defaultApiKey: DEFAULT_KEY });
    expect(endpoint.apiKey).toBeUndefined();
  });

  it('a key over plain HTTP to a host that is not loopback refuses to start; HTTPS or loopback start', () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-plain-http-'));
    projects.push(dir);
    mkdirSync(join(dir, 'agents'));
    const write = (model: string) => writeFileSync(join(dir, 'agents', 'remote.yaml'),
      `id: remote\ndescription: d\ninstructions: i\nmodel:\n  provider: openai-compatible\n  name: m\n${model}`);
    write('  base_url: http://models.example.com/v1\n  api_key_env: REMOTE_KEY\n');
    expect(() => loadDefinitions(dir)).toThrow(/remote\.yaml: model\.base_url: .*plain HTTP/);
    // The default key, to the default URL (the agent names none).
    write('');
    expect(() => loadDefinitions(dir, { modelBaseUrl: 'http://10.0.0.5:8000/v1', modelApiKey: true })).toThrow(/plain HTTP/);
    expect(() => loadConfig({ SWITCHYARD_MODEL_BASE_URL: 'http://10.0.0.5:8000/v1', SWITCHYARD_MODEL_API_KEY: 'sk-x-0123456789' })).toThrow(/plain HTTP/);
    expect(loadConfig({ SWITCHYARD_MODEL_BASE_URL: 'http://10.0.0.5:8000/v1' }).modelApiKey).toBeUndefined();
    expect(loadConfig({ SWITCHYARD_MODEL_BASE_URL: 'https://models.example.com/v1', SWITCHYARD_MODEL_API_KEY: 'sk-x-0123456789' }).modelApiKey).toBe('sk-x-0123456789');
    expect(loadDefinitions(dir, { modelBaseUrl: 'http://127.0.0.1:8000/v1', modelApiKey: true }).agents.has('remote')).toBe(true);
    write('  base_url: https://models.example.com/v1\n  api_key_env: REMOTE_KEY\n');
    expect(loadDefinitions(dir).agents.has('remote')).toBe(true);
    // A credential in the URL would be logged and quoted in errors: refused, pointing at the key settings.
    write('  base_url: https://user:sk-in-url-0123456789@models.example.com/v1\n');
    expect(() => loadDefinitions(dir)).toThrow(/model\.base_url: must not carry a user or password/);
    expect(() => loadConfig({ SWITCHYARD_MODEL_BASE_URL: 'https://:sk-in-url-0123456789@models.example.com/v1' })).toThrow(/must not carry a user or password/);
    // Without any key, plain HTTP anywhere is the operator's choice.
    write('  base_url: http://models.example.com/v1\n');
    expect(loadDefinitions(dir, { modelBaseUrl: 'https://models.example.com/v1', modelApiKey: true }).agents.has('remote')).toBe(true);
  });

  /** An engine on `dir` whose openai-compatible provider has the stand-in as its default URL, and DEFAULT_KEY. */
  const engineWithDefaultKey = (dir: string) => startTestEngine({
    projectDir: dir,
    providers: new Map<string, ModelProvider>([['openai-compatible', new OpenAiCompatibleProvider({ defaultBaseUrl: defaultUrl(), defaultApiKey: DEFAULT_KEY })]]),
  });

  it('a provider error that quotes the key: the key is in no answer, list, stored row or span', async () => {
    const dir = projectWithModelAt(defaultUrl());
    writeFileSync(join(dir, 'agents', 'rejected.yaml'), [
      'id: rejected', 'description: a model that refuses our key', 'instructions: answer',
      // Its own base_url at the default's origin: the default key goes there.
      'model:', '  provider: openai-compatible', '  name: rejects-the-key', `  base_url: ${defaultUrl()}`, '',
    ].join('\n'));
    const t4 = await engineWithDefaultKey(dir);
    try {
      const { body } = await t4.post('/api/v1/agents/rejected/executions/sync', { input: 'hi' });
      expect(body).toMatchObject({ status: 'failed', error: { code: 'model_http_401' } });
      // The control: the key was sent, and the server's text (less the key) is still there to read.
      expect(received.at(-1)).toEqual({ model: 'rejects-the-key', authorization: `Bearer ${DEFAULT_KEY}` });
      expect(body.error.message).toContain('Incorrect API key provided: Bearer [REDACTED]');
      const texts = [JSON.stringify(body), JSON.stringify((await t4.get(`/api/v1/executions/${body.id}`)).body),
        JSON.stringify((await t4.get('/api/v1/executions?include=io')).body), JSON.stringify((await t4.get('/api/v1/executions')).body),
        readFileSync(t4.dbPath).toString('latin1'),
        JSON.stringify(t4.observed.spans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, status: s.status })))];
      try {
        texts.push(readFileSync(`${t4.dbPath}-wal`).toString('latin1'));
      } catch {
        // no WAL
      }
      for (const text of texts) expect(text).not.toContain('3b8e6c0f9a1d47e2');
    } finally {
      await t4.close();
    }
  });

  it('a secret a model-driven agent passes to a tool: redacted from the stored input (written before) and the model\'s error', async () => {
    const dir = projectWithModelAt(defaultUrl());
    writeFileSync(join(dir, 'tools', 'echo_token.yaml'), `id: echo_token\ndescription: echo\nscript: ${resolve('examples/tools/echo.ts')}\ntimeout_ms: 5000\nsecret_inputs: [token]\n`);
    writeFileSync(join(dir, 'agents', 'passer.yaml'), [
      'id: passer', 'description: a model that passes its input to a tool', 'instructions: answer', 'tools: [echo_token]',
      'model:', '  provider: openai-compatible', '  name: passes-the-token', `  base_url: ${defaultUrl()}`, '',
    ].join('\n'));
    const t5 = await engineWithDefaultKey(dir);
    try {
      const token = 'model-chosen-7a6b5c4d3e2f1a0b';
      const { body } = await t5.post('/api/v1/agents/passer/executions/sync', { input: { token, who: 'ada' } });
      expect(body).toMatchObject({ status: 'failed', error: { code: 'model_http_400' } });
      // The control: the server's error did quote the request (the rest of it is there).
      expect(body.error.message).toContain('bad request');
      expect(body.error.message).toContain('ada');
      expect(body.input).toEqual({ token: '[REDACTED]', who: 'ada' });
      const stored = await t5.store.getExecution(body.id);
      const texts = [JSON.stringify(body), JSON.stringify(stored), JSON.stringify((await t5.get('/api/v1/executions?include=io')).body),
        JSON.stringify(t5.observed.spans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, status: s.status })))];
      for (const text of texts) expect(text).not.toContain('7a6b5c4d3e2f1a0b');
    } finally {
      await t5.close();
    }
  });
});
