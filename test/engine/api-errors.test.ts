import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, startTestEngine, TEST_API_KEY, TICKET, type TestEngine } from '../support/engine.ts';

let t: TestEngine;
beforeAll(async () => {
  t = await startTestEngine();
});
afterAll(async () => t.close());

/** With the test key unless `init.headers` says otherwise. */
const raw = (path: string, init: RequestInit) => fetch(t.url + path, { ...init, headers: { ...bearer(TEST_API_KEY), ...(init.headers as Record<string, string> | undefined) } }).then(async (r) => ({
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
    ['body a JSON null (Schemathesis found it accepted)', '/api/v1/agents/summarizer/executions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'null' }, 400, 'bad-request', /JSON object/],
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

  it.each([
    ['[5]', { timeout_ms: [5] }, ''], ['true', { timeout_ms: true }, ''], ['1.5', { timeout_ms: 1.5 }, ''], ['"5000"', { timeout_ms: '5000' }, ''],
    ['0', { timeout_ms: 0 }, ''], ['null', { timeout_ms: null }, ''],
    ['?timeout_ms=1.5', {}, '?timeout_ms=1.5'], ['?timeout_ms=1e3', {}, '?timeout_ms=1e3'], ['?timeout_ms=', {}, '?timeout_ms='],
    ['?timeout_ms=5&timeout_ms=6', {}, '?timeout_ms=5&timeout_ms=6'], ['?timeout_ms=-5', {}, '?timeout_ms=-5'],
  ])('timeout_ms %s is refused', async (_name, extra, query) => {
    const { status, body } = await t.post(`/api/v1/workflows/quick_answer/executions/sync${query}`, { input: { question: 'q' }, ...extra });
    expect(status).toBe(400);
    expect(body.detail).toMatch(/timeout_ms must be an integer from 1 to 300000/);
  });

  it('timeout_ms as a JSON integer or a query of digits is taken', async () => {
    for (const [query, extra] of [['', { timeout_ms: 5_000 }], ['?timeout_ms=5000', {}]] as const) {
      const { status, body } = await t.post(`/api/v1/workflows/quick_answer/executions/sync${query}`, { input: { question: 'q' }, ...extra });
      expect(status).toBe(200);
      expect(body.status).toBe('success');
    }
  });

  it('parent_execution_id must name an existing execution', async () => {
    const unknown = await t.post('/api/v1/workflows/quick_answer/executions', { input: { question: 'q' }, parent_execution_id: 'no-such-run' });
    expect(unknown.status).toBe(422);
    expect(unknown.body).toMatchObject({ type: 'urn:switchyard:problem:unknown-parent' });
    expect(unknown.body.detail).toMatch(/parent_execution_id "no-such-run" names no execution/);
    const parent = await t.post('/api/v1/workflows/quick_answer/executions', { input: { question: 'q' } });
    const child = await t.post('/api/v1/workflows/quick_answer/executions/sync', { input: { question: 'q' }, parent_execution_id: parent.body.id });
    expect(child.status).toBe(200);
    expect(child.body.parent_execution_id).toBe(parent.body.id);
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
    const before = (await t.get('/api/v1/executions?limit=100')).body.executions.length;
    await raw('/api/v1/workflows/support_triage/executions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' });
    await t.post('/api/v1/workflows/support_triage/executions', { input: { ...TICKET, email: 1 } });
    expect((await t.get('/api/v1/executions?limit=100')).body.executions.length).toBe(before);
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
      '{"input": {"toString": "x", "question": {"toString": 1, "valueOf": 2}, "email": {"toString": "a"}}}', '{"timeout_ms": [5]}', '{"timeout_ms": true}',
      '{"input": {}, "parent_execution_id": "../../etc/passwd"}', '{"input": ' + '{"a":'.repeat(70) + '1' + '}'.repeat(70) + '}',
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
    yield { method: 'GET', path: '/api/v1/executions?include=io&limit=100', headers: {} };
  }

  function nest(depth: number): unknown {
    let value: unknown = 'leaf';
    for (let d = 0; d < depth; d++) value = { d: value };
    return value;
  }

  it('answers every one with a 4xx (or a 2xx for a harmless one), never a 5xx; without a key every one is a 401; no run fails as internal', async () => {
    const statuses = new Map<number, number>();
    const rssBefore = process.memoryUsage().rss;
    let sent = 0;
    for (const request of corpus()) {
      for (const authorization of [`Bearer ${TEST_API_KEY}`, undefined, 'Bearer wrong-key-0123456789abcdef']) {
        const headers = authorization === undefined ? request.headers : { ...request.headers, authorization };
        const response = await fetch(t.url + request.path, { method: request.method, headers, body: request.body, signal: AbortSignal.timeout(10_000) });
        await response.arrayBuffer();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        const what = `${request.method} ${request.path} ${request.body?.slice(0, 80)} (${authorization ?? 'no key'})`;
        expect(response.status, what).toBeLessThan(500);
        if (authorization !== `Bearer ${TEST_API_KEY}`) expect(response.status, what).toBe(401);
        sent++;
      }
    }
    expect(sent).toBeGreaterThanOrEqual(3_000);
    expect([...statuses.keys()].some((s) => s >= 400 && s !== 401)).toBe(true);
    expect([...statuses.keys()].some((s) => s < 300)).toBe(true);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    // The runs the corpus started end in no engine bug, and memory stayed bounded.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const runs = await t.engine.list({ limit: 100, withData: false });
    expect(runs.filter((r) => r.error?.code === 'internal' || r.finalizationPath === 'force_failed')).toEqual([]);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(300 * 1024 * 1024);
    const health = await t.post('/api/v1/workflows/quick_answer/executions/sync', { input: { question: 'still there?' } });
    expect(health.body.status).toBe('success');
  }, 300_000);
});
