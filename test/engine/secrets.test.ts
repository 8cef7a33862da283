import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redactValue, secretForms } from '../../src/engine/secrets.ts';
import { eventually, startTestEngine, TEST_API_KEY, type TestEngine } from '../support/engine.ts';

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

// Quotes and a backslash: its JSON-escaped form differs from the raw one.
const SECRET = 'sk-"live"\\0123456789';
let t: TestEngine;
beforeAll(async () => {
  t = await startTestEngine({ projectDir: project });
});
afterAll(async () => {
  await t.close();
  rmSync(project, { recursive: true, force: true });
});

/** Every form a leak could take. */
const FORMS = secretForms([SECRET]);
function expectNoSecret(text: string, where: string) {
  for (const form of FORMS) expect(text, `${where} contains ${form}`).not.toContain(form);
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

  it('redaction covers the raw, JSON-escaped and doubly escaped forms, in keys and values', () => {
    const once = JSON.stringify(SECRET).slice(1, -1);
    const twice = JSON.stringify(once).slice(1, -1);
    const value = { a: `x ${SECRET} y`, b: [`{"k":"${once}"}`, `"${twice}"`], [SECRET]: 1 };
    const text = JSON.stringify(redactValue(value, FORMS));
    expect(text).not.toContain('0123456789');
    expect(text.match(/\[REDACTED\]/g)).toHaveLength(4);
    expect(readFileSync(join(project, 'tools', 'echo_secret.yaml'), 'utf8')).toContain('secret_inputs: [api_key]');
    expect(TEST_API_KEY).toBeTruthy();
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
});
