import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEngine, TICKET, type TestEngine } from '../support/engine.ts';

let t: TestEngine;
beforeAll(async () => {
  t = await startTestEngine();
});
afterAll(async () => t.close());

const raw = (path: string, init: RequestInit) => fetch(t.url + path, init).then(async (r) => ({
  status: r.status, type: r.headers.get('content-type') ?? '', body: (await r.json().catch(() => undefined)) as any, allow: r.headers.get('allow'),
}));

describe('bad requests get problem+json that says what is wrong', () => {
  it.each([
    ['malformed JSON', '/api/v1/workflows/support_triage/executions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"input": ' }, 400, 'malformed-json', /not valid JSON/],
    ['wrong content type', '/api/v1/workflows/support_triage/executions', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' }, 415, 'unsupported-media-type', /application\/json.*text\/plain/],
    ['body too large', '/api/v1/workflows/support_triage/executions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: { body: 'x'.repeat(200_000) } }) }, 413, 'body-too-large', /100kb/],
    ['unknown workflow', '/api/v1/workflows/nope/executions', { method: 'POST' }, 404, 'not-found', /workflow "nope" is not defined/],
    ['unknown field', '/api/v1/workflows/support_triage/executions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"inputs": {}}' }, 400, 'bad-request', /"inputs"/],
    ['body not an object', '/api/v1/workflows/support_triage/executions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1,2]' }, 400, 'bad-request', /JSON object/],
    ['bad sync timeout', '/api/v1/workflows/support_triage/executions/sync?timeout_ms=999999', { method: 'POST' }, 400, 'bad-request', /timeout_ms/],
    ['unknown execution', '/api/v1/executions/does-not-exist', { method: 'GET' }, 404, 'not-found', /does-not-exist/],
    ['bad status filter', '/api/v1/executions?status=done', { method: 'GET' }, 400, 'bad-request', /status must be one of/],
    ['bad limit', '/api/v1/executions?limit=0', { method: 'GET' }, 400, 'bad-request', /limit/],
    ['wrong method', '/api/v1/workflows/support_triage/executions', { method: 'GET' }, 405, 'method-not-allowed', /use POST/],
    ['unknown route', '/api/v2/anything', { method: 'GET' }, 404, 'not-found', /no route/],
  ] as const)('%s', async (_name, path, init, status, type, detail) => {
    const response = await raw(path, init as RequestInit);
    expect(response.status).toBe(status);
    expect(response.type).toContain('application/problem+json');
    expect(response.body).toMatchObject({ type: `urn:switchyard:problem:${type}`, status, instance: path });
    expect(response.body.detail).toMatch(detail);
    if (status === 405) expect(response.allow).toBe('POST');
  });

  it('input that fails the workflow schema lists each problem', async () => {
    const { status, body } = await t.post('/api/v1/workflows/support_triage/executions', { input: { email: 42 } });
    expect(status).toBe(422);
    expect(body.errors).toEqual(expect.arrayContaining([expect.stringMatching(/^email:/), expect.stringMatching(/^subject:/), expect.stringMatching(/^body:/)]));
  });

  it('cancel of a finished run is a conflict that shows the run', async () => {
    const done = await t.post('/api/v1/workflows/quick_answer/executions/sync', { input: { question: 'hi' } });
    const { status, body } = await t.post(`/api/v1/executions/${done.body.id}/cancel`);
    expect(status).toBe(409);
    expect(body.execution).toMatchObject({ id: done.body.id, status: 'success' });
  });

  it('a bad request loses nothing: nothing was stored for it', async () => {
    const before = (await t.get('/api/v1/executions?limit=500')).body.executions.length;
    await raw('/api/v1/workflows/support_triage/executions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' });
    await t.post('/api/v1/workflows/support_triage/executions', { input: { ...TICKET, email: 1 } });
    expect((await t.get('/api/v1/executions?limit=500')).body.executions.length).toBe(before);
  });
});

describe('a corpus of hostile requests', () => {
  /** Deterministic generator: the same thousand-odd requests every run. */
  function* corpus(): Generator<{ method: string; path: string; headers: Record<string, string>; body?: string }> {
    const paths = [
      '/api/v1/workflows/support_triage/executions', '/api/v1/workflows/support_triage/executions/sync?timeout_ms=50',
      '/api/v1/tasks/customer_lookup/executions', '/api/v1/agents/faq_bot/executions', '/api/v1/workflows/%00/executions',
      '/api/v1/workflows/' + 'a'.repeat(300) + '/executions', '/api/v1/executions/..%2f..%2fetc%2fpasswd', '/api/v1/executions?limit=-1',
      '/api/v1/executions?status[]=x', '/api/v1/executions/x/cancel', '/api/v1/executions/x/resume', '/api/v1/workflows/support_triage/executions/sync?timeout_ms=abc',
    ];
    const bodies = [
      '', '{', '}', 'null', 'true', '"string"', '[]', '{"input": ', '{"input": {"email": []}}', '{"input": null, "extra": 1}',
      '{"input": {"email": "a@b", "subject": 1, "body": {}}}', '{"parent_execution_id": 42}', '{"parent_execution_id": "' + 'p'.repeat(100) + '"}',
      '{"timeout_ms": -5}', '\u0000\u0001\u0002', '{"input": "\ud800"}', '[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]',
      JSON.stringify({ input: nest(200) }), '{"a":' + '['.repeat(5000) + ']'.repeat(5000) + '}', '{"__proto__": {"polluted": true}}',
      '{"constructor": {"prototype": {"x": 1}}}', 'x'.repeat(150_000), '{"input": ' + '1'.repeat(400) + '}',
    ];
    const types = ['application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16', 'multipart/form-data; boundary=x', ''];
    const methods = ['POST', 'PUT', 'DELETE', 'PATCH', 'GET'];
    let i = 0;
    for (const path of paths) {
      for (const body of bodies) {
        const type = types[i % types.length]!;
        const method = methods[i % 7 === 0 ? (i / 7) % methods.length : 0]!;
        i++;
        yield { method, path, headers: type ? { 'content-type': type } : {}, body: method === 'GET' ? undefined : body };
      }
    }
    for (let n = 0; n < 1_000 - paths.length * bodies.length; n++) {
      yield { method: 'POST', path: `/api/v1/workflows/wf_${n}/executions`, headers: { 'content-type': 'application/json' }, body: '{"input":{}}' };
    }
  }

  function nest(depth: number): unknown {
    let value: unknown = 'leaf';
    for (let d = 0; d < depth; d++) value = { d: value };
    return value;
  }

  it('answers every one with a 4xx (or a 2xx for a harmless one), never a 5xx, and keeps serving', async () => {
    const statuses = new Map<number, number>();
    let sent = 0;
    for (const request of corpus()) {
      const response = await fetch(t.url + request.path, { method: request.method, headers: request.headers, body: request.body });
      await response.arrayBuffer();
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      expect(response.status, `${request.method} ${request.path} ${request.body?.slice(0, 80)}`).toBeLessThan(500);
      sent++;
    }
    expect(sent).toBeGreaterThanOrEqual(1_000);
    expect([...statuses.keys()].some((s) => s >= 400)).toBe(true);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    const health = await t.post('/api/v1/workflows/quick_answer/executions/sync', { input: { question: 'still there?' } });
    expect(health.body.status).toBe('success');
  }, 120_000);
});
