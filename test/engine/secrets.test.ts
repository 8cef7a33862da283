import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { redactText, redactValue, secretForms } from '../../src/engine/secrets.ts';
import { bearer, eventually, startTestEngine, TEST_API_KEY, TEST_LOADGEN_KEY, type TestEngine } from '../support/engine.ts';

/**
 * The sample project plus tools that mishandle a secret input: one echoes it into its output, one puts
 * its whole input, JSON-encoded (so quotes and backslashes escaped), into its error message.
 */
const project = mkdtempSync(join(tmpdir(), 'switchyard-secrets-'));
cpSync(resolve('examples'), project, { recursive: true });
writeFileSync(join(project, 'tools', 'leak_json.ts'), [
  'const chunks: Buffer[] = [];',
  'for await (const chunk of process.stdin) chunks.push(chunk as Buffer);',
  'const request = JSON.parse(Buffer.concat(chunks).toString("utf8"));',
  'process.stdout.write(JSON.stringify({ error: { code: "REJECTED", message: `upstream rejected ${JSON.stringify(request.input)}` } }) + "\\n");',
].join('\n'));
const tool = (id: string, script: string) => writeFileSync(join(project, 'tools', `${id}.yaml`),
  `id: ${id}\ndescription: test\nscript: ${script}\ntimeout_ms: 5000\nenv: []\nsecret_inputs: [api_key]\n`);
tool('echo_secret', 'echo.ts');
tool('leak_json', 'leak_json.ts');
for (const id of ['echo_secret', 'leak_json']) writeFileSync(join(project, 'tasks', `${id}.yaml`), `id: ${id}\ndescription: test\ntool: ${id}\ninput: "{{ input }}"\n`);
writeFileSync(join(project, 'workflows', 'keyed_notify.yaml'), [
  'id: keyed_notify', 'description: test', 'tasks:',
  '  - id: echo', '    tool: echo_secret', '    input: { api_key: "{{ input.key }}", note: "key is {{ input.key }}" }',
  '  - id: notify', '    tool: send_notification', '    input: { to: "a@b.example", api_key: "{{ input.key }}" }',
  'output: { echoed: "{{ tasks.echo.output }}", sent: "{{ tasks.notify.output }}" }', '',
].join('\n'));
writeFileSync(join(project, 'workflows', 'keyed_approval.yaml'), [
  'id: keyed_approval', 'description: test', 'tasks:',
  '  - id: approval', '    pause: true',
  '  - id: notify', '    tool: send_notification', '    input: { to: "a@b.example", api_key: "{{ input.key }}" }', '',
].join('\n'));

// A tool that leaks the part of its input after "Bearer " in other encodings: URL-encoded, base64 (of the
// part and of the whole header, standard and URL-safe) and upper-cased, into its error message.
writeFileSync(join(project, 'tools', 'leak_encoded.ts'), [
  'const chunks: Buffer[] = [];',
  'for await (const chunk of process.stdin) chunks.push(chunk as Buffer);',
  'const { input } = JSON.parse(Buffer.concat(chunks).toString("utf8"));',
  'const raw = String(input.token).replace(/^Bearer /, "");',
  'const b64 = (s: string) => Buffer.from(s).toString("base64");',
  'const message = `denied url=${encodeURIComponent(raw)} b64=${b64(raw)} header=${b64(input.token)} safe=${Buffer.from(input.token).toString("base64url")} upper=${raw.toUpperCase()}`;',
  'process.stderr.write(message + "\\n");',
  'process.stdout.write(JSON.stringify({ error: { code: "DENIED", message } }) + "\\n");',
].join('\n'));
writeFileSync(join(project, 'tools', 'leak_encoded.yaml'), 'id: leak_encoded\ndescription: test\nscript: leak_encoded.ts\ntimeout_ms: 5000\nenv: []\nsecret_inputs: [token]\n');
writeFileSync(join(project, 'tools', 'echo_token.yaml'), 'id: echo_token\ndescription: test\nscript: echo.ts\ntimeout_ms: 5000\nenv: []\nsecret_inputs: [token]\n');
writeFileSync(join(project, 'workflows', 'bearer_leak.yaml'), [
  'id: bearer_leak', 'description: test', 'tasks:',
  '  - id: leak', '    tool: leak_encoded', '    input: { token: "Bearer {{ input.token }}", note: "plain" }', '',
].join('\n'));
// A scripted agent that passes its caller's token to a tool whose secret input it is.
writeFileSync(join(project, 'agents', 'token_agent.yaml'), [
  'id: token_agent', 'description: test', 'instructions: pass the token on', 'model: { provider: scripted, name: scripted-token }',
  'tools: [echo_token]', 'max_iterations: 3', 'script:',
  '  - tool_calls: [{ tool: echo_token, arguments: { token: "{{ input.token }}", who: "{{ input.who }}" } }]',
  '  - final: { echoed: "{{ tool_results.echo_token }}" }', '',
].join('\n'));
writeFileSync(join(project, 'workflows', 'token_agent_flow.yaml'), [
  'id: token_agent_flow', 'description: test', 'tasks:',
  '  - id: agent', '    agent: token_agent', '    input: { token: "{{ input.token }}", who: "{{ input.who }}" }', '',
].join('\n'));

// A secret that a task gets from an earlier task's output: known only when the second task runs.
writeFileSync(join(project, 'workflows', 'late_secret.yaml'), [
  'id: late_secret', 'description: test', 'tasks:',
  '  - id: fetch', '    tool: echo', '    input: { value: "{{ input.value }}" }',
  '  - id: use', '    tool: echo_token', '    input: { token: "{{ tasks.fetch.output.echo.value }}" }', '',
].join('\n'));

// Quotes and a backslash: its JSON-escaped form differs from the raw one.
const SECRET = 'sk-"live"\\0123456789';
let t: TestEngine;
/** What the engine logs (pino's JSON lines, kept in memory). */
const logLines: string[] = [];
beforeAll(async () => {
  t = await startTestEngine({ projectDir: project, logger: pino({ level: 'warn' }, { write: (line: string) => void logLines.push(line) }) });
});
afterAll(async () => {
  await t.close();
  rmSync(project, { recursive: true, force: true });
});

/** Every form a leak could take. */
const FORMS = secretForms([SECRET]);
function expectNoSecret(text: string, where: string) {
  for (const form of FORMS.forms) expect(text.toLowerCase(), `${where} contains ${form}`).not.toContain(form.toLowerCase());
  expect(text, where).not.toContain('0123456789');
}

describe('secret inputs stay secret', () => {
  it('not in any API answer, stored record or span, however the tool leaks them', async () => {
    const answers: string[] = [];
    const echoed = await t.post('/api/v1/tasks/echo_secret/executions/sync', { input: { api_key: SECRET, other: 'visible' } });
    expect(echoed.body.status).toBe('success');
    expect(echoed.body.output.echo).toMatchObject({ api_key: '[REDACTED]', other: 'visible' });
    const leaked = await t.post('/api/v1/tasks/leak_json/executions/sync', { input: { api_key: SECRET } });
    expect(leaked.body.status).toBe('failed');
    expect(leaked.body.error.message).toContain('[REDACTED]');
    const flow = await t.post('/api/v1/workflows/keyed_notify/executions/sync', { input: { key: SECRET } });
    expect(flow.body.status).toBe('success');
    expect(flow.body.input).toEqual({ key: '[REDACTED]' });
    const accepted = await t.post('/api/v1/tasks/echo_secret/executions', { input: { api_key: SECRET } });
    expect(accepted.status).toBe(202);
    answers.push(JSON.stringify([echoed.body, leaked.body, flow.body, accepted.body]));
    for (const id of [echoed.body.id, leaked.body.id, flow.body.id, accepted.body.id]) answers.push(JSON.stringify((await t.get(`/api/v1/executions/${id}`)).body));
    answers.push(JSON.stringify((await t.get('/api/v1/executions?include=io&limit=100')).body));
    answers.push(JSON.stringify((await t.get('/api/v1/executions?limit=100')).body));
    expectNoSecret(answers.join('\n'), 'API answers');

    await t.engine.waitForCompletion(accepted.body.id, 10_000);
    const db = new DatabaseSync(t.dbPath, { readOnly: true });
    try {
      expectNoSecret(JSON.stringify(db.prepare('SELECT * FROM executions').all()), 'the stored records');
    } finally {
      db.close();
    }
    expectNoSecret(JSON.stringify(t.observed.spans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, status: s.status }))), 'spans');
    // The control: the tools did receive the secret (the echo returned it, the notification was authenticated).
    expect(flow.body.output.sent).toMatchObject({ authenticated: true });
  }, 60_000);

  /** Every API answer, stored row and span that could hold an execution's data. */
  async function everythingAbout(ids: string[]): Promise<string> {
    const texts: string[] = [];
    for (const id of ids) {
      await t.engine.waitForCompletion(id, 10_000);
      texts.push(JSON.stringify((await t.get(`/api/v1/executions/${id}`)).body));
    }
    // Read with another caller's key: keys have no scopes, so this is what any caller sees.
    texts.push(JSON.stringify((await t.get('/api/v1/executions?include=io&limit=100', bearer(TEST_LOADGEN_KEY))).body));
    const db = new DatabaseSync(t.dbPath, { readOnly: true });
    try {
      texts.push(JSON.stringify(db.prepare('SELECT * FROM executions').all()));
    } finally {
      db.close();
    }
    // The SQLite file itself (and its WAL), byte for byte: nothing deleted but still on disk either.
    for (const file of [t.dbPath, `${t.dbPath}-wal`]) {
      try {
        texts.push(readFileSync(file).toString('latin1'));
      } catch {
        // no WAL yet
      }
    }
    texts.push(JSON.stringify(t.observed.spans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, status: s.status }))));
    return texts.join('\n');
  }

  it('a secret an agent passes to a tool is redacted from the run\'s input, output, list and store', async () => {
    const token = 'agent-token-5f1e2d3c4b5a69788796';
    const alone = await t.post('/api/v1/agents/token_agent/executions/sync', { input: { token, who: 'ada' } });
    expect(alone.body.status).toBe('success');
    expect(alone.body.input).toEqual({ token: '[REDACTED]', who: 'ada' });
    expect(alone.body.output.echoed.echo).toEqual({ token: '[REDACTED]', who: 'ada' });
    const inFlow = await t.post('/api/v1/workflows/token_agent_flow/executions/sync', { input: { token, who: 'grace' } });
    expect(inFlow.body.status).toBe('success');
    expect(inFlow.body.input).toEqual({ token: '[REDACTED]', who: 'grace' });
    const text = await everythingAbout([alone.body.id, inFlow.body.id]);
    expect(text).not.toContain('5f1e2d3c4b5a69788796');
    // The control: the caller's other field went through untouched.
    expect(text).toContain('grace');
  }, 60_000);

  it('a secret inside a template is redacted alone and in its encodings: stored error, span status, warn log', async () => {
    const token = 'tk/Live+Key=0123456789abcdef';
    const flow = await t.post('/api/v1/workflows/bearer_leak/executions/sync', { input: { token } });
    expect(flow.body.status).toBe('failed');
    expect(flow.body.input).toEqual({ token: '[REDACTED]' });
    // The tool did leak it, in each encoding: each was replaced.
    expect(flow.body.error.message).toMatch(/denied url=\[REDACTED\] b64=\[REDACTED\]/);
    const text = `${await everythingAbout([flow.body.id])}\n${logLines.join('\n')}`;
    expect(logLines.join('\n')).toContain('denied url=');
    const bytes = Buffer.from(token);
    const leaks = {
      raw: token, upper: token.toUpperCase(), url: encodeURIComponent(token), urlLower: encodeURIComponent(token).toLowerCase(),
      base64: bytes.toString('base64'), base64url: bytes.toString('base64url'),
      // The secret's bits inside base64("Bearer " + token): the middle of that encoding.
      headerBase64: Buffer.from(`Bearer ${token}`).toString('base64').slice(12, -4),
      headerBase64url: Buffer.from(`Bearer ${token}`).toString('base64url').slice(12, -4),
    };
    for (const [name, form] of Object.entries(leaks)) {
      // Text forms match whatever their case; base64 is case-sensitive.
      if (name.includes('ase64')) expect(text, name).not.toContain(form);
      else expect(text.toLowerCase(), name).not.toContain(form.toLowerCase());
    }
    expect(text.toLowerCase()).not.toContain('0123456789abcdef');
  }, 60_000);

  it('a secret first met in a later task: the input and task outputs stored before are redacted again', async () => {
    const value = 'late-secret-0a1b2c3d4e5f6a7b';
    const flow = await t.post('/api/v1/workflows/late_secret/executions/sync', { input: { value } });
    expect(flow.body.status).toBe('success');
    expect(flow.body.input).toEqual({ value: '[REDACTED]' });
    const stored = await t.store.getExecution(flow.body.id);
    expect(stored!.taskOutputs).toEqual({ fetch: { echo: { value: '[REDACTED]' } }, use: { echo: { token: '[REDACTED]' } } });
    expect(JSON.stringify([flow.body, stored, (await t.get('/api/v1/executions?include=io')).body])).not.toContain('0a1b2c3d4e5f6a7b');
  });

  it('redaction covers the raw, JSON-escaped and doubly escaped forms, in keys and values', () => {
    const once = JSON.stringify(SECRET).slice(1, -1);
    const twice = JSON.stringify(once).slice(1, -1);
    const value = { a: `x ${SECRET} y`, b: [`{"k":"${once}"}`, `"${twice}"`], [SECRET]: 1 };
    const text = JSON.stringify(redactValue(value, FORMS));
    expect(text).not.toContain('0123456789');
    expect(text.match(/\[REDACTED\]/g)).toHaveLength(4);
    expect(readFileSync(join(project, 'tools', 'echo_secret.yaml'), 'utf8')).toContain('secret_inputs: [api_key]');
    expect(TEST_API_KEY).toBeTruthy();
    // Each form alone in a value (the value's JSON shows it escaped once more).
    for (const form of [SECRET, once, twice]) expect(JSON.stringify(redactValue({ only: form }, FORMS)), form).toBe('{"only":"[REDACTED]"}');
  });

  it('a paused run that held a secret is not resumed with "[REDACTED]" in its place: 409, and it stays paused', async () => {
    const paused = await t.post('/api/v1/workflows/keyed_approval/executions/sync', { input: { key: SECRET } });
    expect(paused.body.status).toBe('paused');
    const resumed = await t.post(`/api/v1/executions/${paused.body.id}/resume`);
    expect(resumed.status).toBe(409);
    expect(resumed.body.detail).toMatch(/secret values, which are not kept across a pause/);
    expectNoSecret(JSON.stringify(resumed.body), 'the 409 answer');
    expect((await t.get(`/api/v1/executions/${paused.body.id}`)).body.status).toBe('paused');
    // The same workflow without a secret resumes and completes.
    const plain = await t.post('/api/v1/workflows/keyed_approval/executions/sync', { input: { key: 'abc' } });
    expect((await t.post(`/api/v1/executions/${plain.body.id}/resume`)).status).toBe(202);
    await eventually(async () => (await t.get(`/api/v1/executions/${plain.body.id}`)).body.status, (status) => status === 'success');
  });

  it('redacts each encoding at any place in a longer string, and says what it leaves', () => {
    const secret = 'Zq9/Ab+cd=EfGh12';
    const forms = secretForms([secret]);
    for (const prefix of ['', 'x', 'xy', 'Bearer ', 'user:']) {
      for (const [name, encode] of [['base64', 'base64'], ['base64url', 'base64url']] as const) {
        const encoded = Buffer.from(prefix + secret + ' tail').toString(encode);
        const redacted = redactText(`header ${encoded} end`, forms);
        expect(redacted, `${name} after ${JSON.stringify(prefix)}`).toContain('[REDACTED]');
        // What survives is the neighbours' encoding plus at most a character at each end (bits mixed).
        const left = redacted.slice('header '.length, -' end'.length).replace('[REDACTED]', '');
        const neighbours = Math.ceil((prefix.length * 4) / 3) + Math.ceil((' tail'.length * 4) / 3) + 4;
        expect(left.length, `${name} after ${JSON.stringify(prefix)}: ${redacted}`).toBeLessThanOrEqual(neighbours);
      }
    }
    expect(redactText(`a=${encodeURIComponent(secret).toLowerCase()}&b=${secret.toUpperCase()}`, forms)).toBe('a=[REDACTED]&b=[REDACTED]');
    expect(redactText(Buffer.from(secret).toString('hex').toUpperCase(), forms)).toBe('[REDACTED]');
    expect(redactText(JSON.stringify(JSON.stringify({ k: secret })), forms)).not.toContain('EfGh12');
    // The documented limits: shorter values are no secrets; encoded forms start at 6 characters.
    expect(secretForms(['abc']).forms).toEqual([]);
    expect(redactText(`x ${Buffer.from('abcd').toString('base64')} abcd`, secretForms(['abcd']))).toBe(`x ${Buffer.from('abcd').toString('base64')} [REDACTED]`);
  });
});
