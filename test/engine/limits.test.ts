import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_LIST_BYTES } from '../../src/api/app.ts';
import { jsonDepthExceeds, parseByteLimit } from '../../src/api/limits.ts';
import { startTestEngine, TEST_API_KEY, TICKET, type TestEngine } from '../support/engine.ts';

let t: TestEngine;
beforeAll(async () => {
  t = await startTestEngine({ bodyLimit: '1mb', serverLimits: { requestTimeoutMs: 1_500, headersTimeoutMs: 700, keepAliveTimeoutMs: 500 } });
});
afterAll(async () => t.close());

const port = () => Number(new URL(t.url).port);

/**
 * Writes raw bytes on a fresh connection; resolves with what came back and who closed the connection: the
 * server, or this client after `waitMs` (a server that waits for the rest of a body never closes it).
 */
function rawExchange(head: string, options: { body?: string; waitMs?: number } = {}) {
  return new Promise<{ text: string; closedBy: 'server' | 'client' }>((resolve) => {
    let text = '';
    let closedBy: 'server' | 'client' = 'server';
    const socket = net.connect(port(), '127.0.0.1', () => socket.write(head + (options.body ?? '')));
    socket.on('data', (chunk) => (text += chunk));
    socket.on('close', () => resolve({ text, closedBy }));
    socket.on('error', () => undefined);
    const giveUp = setTimeout(() => {
      closedBy = 'client';
      socket.destroy();
    }, options.waitMs ?? 10_000);
    socket.on('close', () => clearTimeout(giveUp));
  });
}
const statusOf = (text: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
const problemOf = (text: string) => JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { type: string; detail: string };

describe('bounded work per request', () => {
  it('a declared 10 GB body is refused at once with 413, and the connection closed, not drained', async () => {
    const head = `POST /api/v1/workflows/quick_answer/executions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TEST_API_KEY}\r\n`
      + `content-type: application/json\r\ncontent-length: ${10 * 1024 ** 3}\r\n\r\n`;
    const result = await rawExchange(head, { body: '{"input": {' });
    expect(statusOf(result.text)).toBe(413);
    expect(result.text).toMatch(/content-type: application\/problem\+json/i);
    expect(problemOf(result.text).detail).toMatch(/exceeds the limit of 1mb/);
    expect(result.closedBy).toBe('server');
    // A body within the limit still goes through.
    expect((await t.post('/api/v1/workflows/quick_answer/executions', { input: { question: 'q'.repeat(500_000) } })).status).toBe(202);
  });

  it('deep JSON is refused by a linear scan, and /healthz stays fast while it arrives', async () => {
    const deep = '{"input": ' + '['.repeat(400_000) + ']'.repeat(400_000) + '}';
    const latencies: number[] = [];
    let sending = true;
    const probe = (async () => {
      while (sending) {
        const started = performance.now();
        await (await fetch(`${t.url}/healthz`)).arrayBuffer();
        latencies.push(performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const answers = await Promise.all(Array.from({ length: 30 }, () => t.post('/api/v1/workflows/quick_answer/executions', deep)));
    sending = false;
    await probe;
    for (const answer of answers) {
      expect(answer.status).toBe(400);
      expect(answer.body.detail).toMatch(/nested deeper than 64 levels/);
    }
    // Health probes were answered while the deep bodies arrived (the scan never held the event loop for long).
    expect(latencies.length).toBeGreaterThan(0);
    // 63 levels of input (64 with the body) are fine.
    const ok = '{"input": {"question": "q", "deep": ' + '['.repeat(62) + ']'.repeat(62) + '}}';
    expect((await t.post('/api/v1/workflows/quick_answer/executions', ok)).status).toBe(202);
  }, 60_000);

  it('the depth scan ignores brackets inside strings and escaped quotes', () => {
    const enc = (text: string) => new TextEncoder().encode(text);
    expect(jsonDepthExceeds(enc(JSON.stringify({ a: '[[[[[[[[[[', b: '\\"[[[[[[' })), 2)).toBe(false);
    expect(jsonDepthExceeds(enc('[[[]]]'), 3)).toBe(false);
    expect(jsonDepthExceeds(enc('[[[[]]]]'), 3)).toBe(true);
    expect(parseByteLimit('1mb')).toBe(1024 * 1024);
    expect(parseByteLimit('100kb')).toBe(102_400);
    expect(() => parseByteLimit('lots')).toThrow(/not a size/);
  });

  it('headers that never finish get 408 problem+json once the headers timeout passes', async () => {
    const result = await rawExchange('GET /api/v1/executions HTTP/1.1\r\nhost: x\r\n');
    expect(statusOf(result.text)).toBe(408);
    expect(problemOf(result.text).type).toBe('urn:switchyard:problem:bad-http-request');
    expect(result.closedBy).toBe('server');
  });

  it.each([
    ['an absolute-form target with a broken host (express\'s router cannot parse it)', 'GET http://[::1/api/v1/executions HTTP/1.1'],
    ['an absolute-form target with no path', 'GET http://x HTTP/1.1'],
    ['an unknown route', 'GET /api/v1/nothing-here HTTP/1.1'],
    ['an unknown route outside /api', 'DELETE /index.html HTTP/1.1'],
  ])('%s gets 404 problem+json, never an HTML page', async (_name, line) => {
    const result = await rawExchange(`${line}\r\nhost: x\r\nauthorization: Bearer ${TEST_API_KEY}\r\nconnection: close\r\n\r\n`);
    expect(statusOf(result.text)).toBe(404);
    expect(result.text).toMatch(/\r\ncontent-type: application\/problem\+json/i);
    expect(problemOf(result.text)).toMatchObject({ type: 'urn:switchyard:problem:not-found', detail: expect.stringMatching(/no route/) });
  });

  it('a body that trickles in past the request timeout is cut off', async () => {
    const head = `POST /api/v1/workflows/quick_answer/executions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TEST_API_KEY}\r\n`
      + 'content-type: application/json\r\ncontent-length: 100\r\n\r\n';
    const result = await rawExchange(head, { body: '{"input": ' });
    // The server gives up on the body (its request timeout), not this client after 10 s.
    expect(result.closedBy).toBe('server');
  });

  it.each([
    ['no leading slash', 'GET foo HTTP/1.1', 400],
    ['not HTTP at all', 'HELLO', 400],
    ['a bad percent escape', 'GET /api/v1/executions/%E0%A4%A HTTP/1.1', 400],
    ['an unknown path', 'GET /%zz HTTP/1.1', 404],
  ])('%s: problem+json, never text/html', async (_name, line, status) => {
    const result = await rawExchange(`${line}\r\nhost: x\r\nauthorization: Bearer ${TEST_API_KEY}\r\nconnection: close\r\n\r\n`);
    expect(statusOf(result.text)).toBe(status);
    expect(result.text).toMatch(/content-type: application\/problem\+json/i);
    expect(result.text).not.toMatch(/text\/html/i);
  });
});

describe('the execution list', () => {
  beforeAll(async () => {
    // 60 executions of ~90 KB input each: 5+ MB, beyond one page's byte cap.
    for (let i = 0; i < 60; i++) {
      await t.store.createExecution({
        id: `big-${String(i).padStart(2, '0')}`, kind: 'task', target: 'customer_lookup', trigger: 'api', input: { pad: 'x'.repeat(90_000), i },
        traceId: null, traceparent: null, parentExecutionId: null, callerKeyId: 'tester', ownerId: 'elsewhere', createdAt: 1_000 + i,
      });
    }
  });

  it('caps limit at 100', async () => {
    expect((await t.get('/api/v1/executions?limit=101')).status).toBe(400);
    expect((await t.get('/api/v1/executions?limit=1.5')).status).toBe(400);
    expect((await t.get('/api/v1/executions?limit=100')).status).toBe(200);
  });

  it('carries no inputs or outputs unless asked, and stays small', async () => {
    const response = await fetch(`${t.url}/api/v1/executions?limit=100`, { headers: { authorization: `Bearer ${TEST_API_KEY}` } });
    const text = await response.text();
    const body = JSON.parse(text) as { executions: Array<Record<string, unknown>> };
    expect(body.executions.length).toBeGreaterThanOrEqual(60);
    for (const item of body.executions) expect(Object.keys(item)).not.toEqual(expect.arrayContaining(['input']));
    expect(text.length).toBeLessThan(200_000);
    expect((await t.get('/api/v1/executions?include=everything')).status).toBe(400);
  });

  it('with include=io, pages stay under the byte cap and the cursor walks through every execution once', async () => {
    const seen: string[] = [];
    let cursor: string | null = '';
    let pages = 0;
    while (cursor !== null) {
      const response = await fetch(`${t.url}/api/v1/executions?include=io&limit=100&status=pending${cursor ? `&cursor=${cursor}` : ''}`, { headers: { authorization: `Bearer ${TEST_API_KEY}` } });
      const text = await response.text();
      expect(response.status).toBe(200);
      expect(Buffer.byteLength(text)).toBeLessThan(MAX_LIST_BYTES + 10_000);
      const body = JSON.parse(text) as { executions: Array<{ id: string; input: { pad: string } }>; next_cursor: string | null };
      for (const item of body.executions) expect(item.input.pad).toHaveLength(90_000);
      seen.push(...body.executions.map((e) => e.id));
      cursor = body.next_cursor;
      pages++;
    }
    expect(pages).toBeGreaterThan(1);
    const big = seen.filter((id) => id.startsWith('big-'));
    expect(big).toHaveLength(60);
    expect(new Set(big).size).toBe(60);
    expect(big[0]).toBe('big-59');
    expect((await t.get('/api/v1/executions?cursor=not-a-cursor')).status).toBe(400);
  });
});

describe('caller input cannot reach an engine bug', () => {
  it.each([
    ['faq_bot agent, question object with toString', '/api/v1/agents/faq_bot/executions/sync', { question: { toString: 'x', valueOf: 'y' } }],
    ['support_triage, toString keys at every level', '/api/v1/workflows/support_triage/executions/sync', { ...TICKET, toString: 'x', constructor: 'c', hasOwnProperty: 1 }],
    ['quick_answer, __proto__ and toString', '/api/v1/workflows/quick_answer/executions/sync', JSON.parse('{"question": {"toString": "x", "__proto__": {"a": 1}}}')],
    ['customer_lookup task', '/api/v1/tasks/customer_lookup/executions/sync', { email: { toString: 'x' }, toString: 'y' }],
  ])('%s: no run fails as internal', async (_name, path, input) => {
    const { status, body } = await t.post(path, { input });
    expect(status === 200 || status === 422, JSON.stringify(body)).toBe(true);
    if (status === 200) {
      expect(body.error?.code).not.toBe('internal');
      expect(body.diagnostics.finalization_path).not.toBe('force_failed');
    }
  });
});
