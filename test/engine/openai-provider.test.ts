import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenAiCompatibleProvider } from '../../src/engine/agent/openai-compatible.ts';
import { ScriptedModelProvider } from '../../src/engine/agent/scripted.ts';
import type { ModelProvider } from '../../src/engine/agent/model.ts';
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
