import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readYaml } from '../config/tools.ts';
import { Authenticator, mergeApiKeys, parseApiKeys } from '../../src/api/auth.ts';
import { ConfigError, isLoopback, loadConfig } from '../../src/config.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { bearer, eventually, startTestEngine, TEST_API_KEY, TEST_LOADGEN_KEY, type TestEngine } from '../support/engine.ts';

let t: TestEngine;
let open: TestEngine;
beforeAll(async () => {
  [t, open] = await Promise.all([startTestEngine(), startTestEngine({ apiKeys: [] })]);
});
afterAll(async () => Promise.all([t.close(), open.close()]));

/** Every route of the API, with a body where it takes one. */
const ROUTES: Array<[method: string, path: string, body?: unknown]> = [
  ['GET', '/api/v1/definitions'],
  ['GET', '/api/v1/executions'],
  ['GET', '/api/v1/executions/some-id'],
  ['POST', '/api/v1/executions/some-id/cancel'],
  ['POST', '/api/v1/executions/some-id/resume'],
  ['POST', '/api/v1/workflows/quick_answer/executions', { input: { question: 'q' } }],
  ['POST', '/api/v1/workflows/quick_answer/executions/sync', { input: { question: 'q' } }],
  ['POST', '/api/v1/tasks/customer_lookup/executions', { input: { email: 'ada@analytical.example' } }],
  ['POST', '/api/v1/tasks/customer_lookup/executions/sync', { input: { email: 'ada@analytical.example' } }],
  ['POST', '/api/v1/agents/faq_bot/executions', { input: { question: 'q' } }],
  ['POST', '/api/v1/agents/faq_bot/executions/sync', { input: { question: 'q' } }],
  ['GET', '/api/v2/no-such-route'],
];

const call = (method: string, path: string, body: unknown, headers: Record<string, string>) => fetch(t.url + path, {
  method, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
  body: body === undefined ? undefined : JSON.stringify(body),
});

describe('API keys', () => {
  it.each(ROUTES)('%s %s: refused without a key and with a wrong one, accepted with a valid one', async (method, path, body) => {
    for (const headers of [{}, bearer('not-the-key-0123456789'), bearer(TEST_API_KEY.slice(0, -1)), { authorization: TEST_API_KEY }, { authorization: `Basic ${TEST_API_KEY}` }]) {
      const refused = await call(method, path, body, headers);
      expect(refused.status, JSON.stringify(headers)).toBe(401);
      expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="switchyard"');
      expect(refused.headers.get('content-type')).toContain('application/problem+json');
      const problem = await refused.json() as { type: string; detail: string };
      expect(problem.type).toBe('urn:switchyard:problem:unauthorized');
      expect(problem.detail).toMatch(/Authorization: Bearer|not valid|must be "Bearer/);
    }
    const accepted = await call(method, path, body, bearer(TEST_API_KEY));
    await accepted.arrayBuffer();
    expect(accepted.status).not.toBe(401);
    expect(accepted.status).toBeLessThan(500);
  });

  it('health and readiness need no key', async () => {
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
  });

  it('a refused request body is never parsed: a 401 even for malformed JSON', async () => {
    const response = await call('POST', '/api/v1/workflows/quick_answer/executions', undefined, { 'content-type': 'application/json' });
    expect(response.status).toBe(401);
    const malformed = await fetch(`${t.url}/api/v1/workflows/quick_answer/executions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' });
    expect(malformed.status).toBe(401);
  });

  it('the key id (never the key) is stored on the execution, returned by the API and set on the run span', async () => {
    const { status, body } = await t.post('/api/v1/workflows/quick_answer/executions/sync', { input: { question: 'who am I?' } });
    expect(status).toBe(200);
    expect(body).toMatchObject({ caller_key_id: 'tester', trigger: 'api_sync' });
    expect(JSON.stringify(body)).not.toContain(TEST_API_KEY);
    expect((await t.store.getExecution(body.id))!.callerKeyId).toBe('tester');
    expect((await t.get(`/api/v1/executions/${body.id}`)).body.caller_key_id).toBe('tester');
    const run = await eventually(async () => t.observed.spans().find((s) => s.name === 'workflow.execute' && s.attributes['switchyard.execution.id'] === body.id), (s) => s !== undefined);
    expect(run!.attributes['switchyard.caller.key_id']).toBe('tester');
    expect(JSON.stringify(t.observed.spans().map((s) => s.attributes))).not.toContain(TEST_API_KEY);
  });

  it('the trigger label comes from the key: the load generator key says loadgen, a header does not', async () => {
    const loadgen = await t.post('/api/v1/workflows/quick_answer/executions', { input: { question: 'q' } }, bearer(TEST_LOADGEN_KEY));
    expect(loadgen.body).toMatchObject({ trigger: 'loadgen', caller_key_id: 'loadgen' });
    const forged = await t.post('/api/v1/workflows/quick_answer/executions', { input: { question: 'q' } }, { 'x-switchyard-trigger': 'loadgen' });
    expect(forged.body).toMatchObject({ trigger: 'api', caller_key_id: 'tester' });
  });

  it('an engine without keys (loopback only) serves every request and records no key id', async () => {
    const { status, body } = await open.post('/api/v1/workflows/quick_answer/executions/sync', { input: { question: 'q' } });
    expect(status).toBe(200);
    expect(body.caller_key_id).toBeNull();
  });
});

/**
 * One request written byte for byte on a socket: what fetch will not send (a Host of our choosing,
 * a header twice). The answer's status, headers (lower-cased names) and body.
 */
async function rawRequest(base: string, lines: string[], body = ''): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const { hostname, port } = new URL(base);
  const text = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.end(`${lines.join('\r\n')}\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
  });
  const [head, ...rest] = text.split('\r\n\r\n');
  const [statusLine, ...headerLines] = head!.split('\r\n');
  const headers = Object.fromEntries(headerLines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine!.split(' ')[1]), headers, body: rest.join('\r\n\r\n') };
}

describe('the key-less mode is loopback-only in fact', () => {
  const port = () => new URL(open.url).port;

  it('a Host that is not a loopback address is refused (DNS rebinding): 403 problem+json, on every route', async () => {
    for (const path of ['/api/v1/executions?include=io', '/api/v1/definitions', '/readyz']) {
      const refused = await rawRequest(open.url, [`GET ${path} HTTP/1.1`, `host: rebind.attacker.example:${port()}`]);
      expect(refused.status, path).toBe(403);
      expect(refused.headers['content-type']).toContain('application/problem+json');
      expect(JSON.parse(refused.body).detail).toMatch(/loopback/);
      expect(refused.body).not.toContain('executions":');
    }
    for (const host of [`127.0.0.1:${port()}`, `localhost:${port()}`, `[::1]:${port()}`, 'LOCALHOST']) {
      expect((await rawRequest(open.url, ['GET /api/v1/executions?include=io HTTP/1.1', `host: ${host}`])).status, host).toBe(200);
    }
    // A request without Host at all (HTTP/1.0) names no address: refused too.
    expect((await rawRequest(open.url, ['GET /api/v1/executions HTTP/1.0'])).status).toBe(403);
    // With keys, the key is the protection: any Host (a proxy's name) is served.
    const keyed = await rawRequest(t.url, ['GET /api/v1/executions HTTP/1.1', 'host: switchyard.internal.example', `authorization: Bearer ${TEST_API_KEY}`]);
    expect(keyed.status).toBe(200);
  });

  it('a foreign Origin is refused: 403, and nothing starts', async () => {
    const before = (await open.get('/api/v1/executions?limit=100')).body.executions.length;
    for (const origin of ['https://evil.example', 'http://rebind.attacker.example:8080', 'null']) {
      const refused = await open.post('/api/v1/workflows/quick_answer/executions', { input: { question: 'q' } }, { origin });
      expect(refused.status, origin).toBe(403);
      expect(refused.headers.get('content-type')).toContain('application/problem+json');
    }
    expect((await open.get('/api/v1/executions?limit=100', { origin: 'https://evil.example' })).status).toBe(403);
    expect((await open.get('/api/v1/executions?limit=100')).body.executions.length).toBe(before);
    // A page served from this machine (any port) may call it.
    expect((await open.post('/api/v1/workflows/quick_answer/executions', { input: { question: 'q' } }, { origin: 'http://localhost:3000' })).status).toBe(202);
  });

  it('a POST without Content-Type: application/json is refused whatever its body (an empty one included): 415', async () => {
    const before = (await open.get('/api/v1/executions?limit=100')).body.executions.length;
    const path = '/api/v1/workflows/quick_answer/executions';
    for (const [type, body] of [['application/x-www-form-urlencoded', ''], ['text/plain', ''], ['multipart/form-data; boundary=x', ''], ['text/plain', '{"input":{"question":"q"}}']] as const) {
      const response = await fetch(open.url + path, { method: 'POST', headers: { 'content-type': type }, body });
      expect(response.status, `${type} ${JSON.stringify(body)}`).toBe(415);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
    }
    const bare = await rawRequest(open.url, [`POST ${path} HTTP/1.1`, `host: 127.0.0.1:${port()}`]);
    expect(bare.status).toBe(415);
    expect((await open.get('/api/v1/executions?limit=100')).body.executions.length).toBe(before);
    expect((await open.post(path, { input: { question: 'q' } })).status).toBe(202);
  });
});

describe('duplicate Authorization headers', () => {
  it('are refused, whichever comes first: 400 problem+json, nothing served', async () => {
    const host = `host: ${new URL(t.url).host}`;
    for (const pair of [[TEST_API_KEY, 'not-the-key-0123456789'], ['not-the-key-0123456789', TEST_API_KEY], [TEST_API_KEY, TEST_API_KEY]]) {
      const response = await rawRequest(t.url, ['GET /api/v1/executions HTTP/1.1', host, ...pair.map((key) => `authorization: Bearer ${key}`)]);
      expect(response.status, pair.join(' / ')).toBe(400);
      expect(response.headers['content-type']).toContain('application/problem+json');
      expect(JSON.parse(response.body).detail).toMatch(/one Authorization header/);
    }
    expect((await rawRequest(t.url, ['GET /api/v1/executions HTTP/1.1', host, `authorization: Bearer ${TEST_API_KEY}`])).status).toBe(200);
  });
});

describe('/readyz', () => {
  it('says only ready or not: a failing store gives 503 without its error text', async () => {
    const store = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'switchyard-readyz-')), 'db'));
    const failing = new Proxy(store, {
      get(target, property) {
        if (property === 'listExecutions') return async () => {
          throw Object.assign(new Error('SQLITE_IOERR: disk I/O error at /srv/secret-volume/switchyard.db (user=engine)'), { code: 'ERR_SQLITE_ERROR' });
        };
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const engine = await startTestEngine({ store: failing });
    try {
      const response = await fetch(`${engine.url}/readyz`);
      expect(response.status).toBe(503);
      const text = await response.text();
      expect(JSON.parse(text)).toMatchObject({ status: 503, detail: 'not ready' });
      for (const leak of ['SQLITE', 'secret-volume', 'user=engine', 'disk']) expect(text).not.toContain(leak);
    } finally {
      await engine.close();
    }
  });
});

describe('key configuration', () => {
  it('parses ids, keys and the loadgen trigger; comments and blank lines are skipped', () => {
    const keys = parseApiKeys('# ops\nops  ops-key-0123456789abc\n\nloadgen loadgen-key-0123456789 trigger=loadgen\n', 'keys.txt');
    expect(keys).toEqual([
      { id: 'ops', key: 'ops-key-0123456789abc', trigger: undefined },
      { id: 'loadgen', key: 'loadgen-key-0123456789', trigger: 'loadgen' },
    ]);
  });

  it.each([
    ['a short key', 'ops short', /at least 16 characters/],
    ['a bad id', 'o/ps ops-key-0123456789abc', /key id must match/],
    ['a lone word (a key without its id, or an id without its key)', 'ops-key-0123456789abc', /an entry is "<id> <key>".*single word; put an id before the key/],
    ['an unknown option', 'ops ops-key-0123456789abc admin=true', /unknown option "admin=true"/],
  ])('rejects %s, naming the entry but not the key', (_name, text, message) => {
    expect(() => parseApiKeys(text, 'keys.txt')).toThrow(message);
    try {
      parseApiKeys(text, 'keys.txt');
    } catch (error) {
      expect((error as Error).message).toMatch(/^keys\.txt, entry 1/);
      expect((error as Error).message).not.toContain('ops-key-0123456789abc');
    }
  });

  it('rejects a duplicate id or a key shared by two ids', () => {
    const a = parseApiKeys('a key-a-0123456789abcdef', 'f');
    expect(() => mergeApiKeys(a, parseApiKeys('a key-b-0123456789abcdef', 'e'))).toThrow(/"a" is defined twice/);
    expect(() => mergeApiKeys(a, parseApiKeys('b key-a-0123456789abcdef', 'e'))).toThrow(/reuses another id's key/);
  });

  it('identifies the caller of each key, and no one for a near miss', () => {
    const auth = new Authenticator(parseApiKeys('a key-a-0123456789abcdef\nb key-b-0123456789abcdef trigger=loadgen', 'f'));
    expect(auth.identify('key-a-0123456789abcdef')).toEqual({ keyId: 'a', trigger: undefined });
    expect(auth.identify('key-b-0123456789abcdef')).toEqual({ keyId: 'b', trigger: 'loadgen' });
    for (const miss of ['key-a-0123456789abcde', 'key-a-0123456789abcdefg', '', 'KEY-A-0123456789ABCDEF']) expect(auth.identify(miss)).toBeUndefined();
  });

  it('the variable takes comma-separated entries; a non-loopback address without keys is a configuration error', () => {
    const config = loadConfig({ SWITCHYARD_HOST: '0.0.0.0', SWITCHYARD_API_KEYS: 'a key-a-0123456789abcdef, b key-b-0123456789abcdef trigger=loadgen' });
    expect(config.apiKeys.map((k) => k.id)).toEqual(['a', 'b']);
    expect(() => loadConfig({ SWITCHYARD_HOST: '0.0.0.0' })).toThrow(ConfigError);
    expect(() => loadConfig({ SWITCHYARD_HOST: '10.1.2.3' })).toThrow(/not a loopback address and no API keys/);
    expect(loadConfig({ SWITCHYARD_HOST: '127.0.0.1' }).apiKeys).toEqual([]);
    expect([isLoopback('127.0.0.1'), isLoopback('127.8.9.10'), isLoopback('::1'), isLoopback('localhost')]).toEqual([true, true, true, true]);
    expect([isLoopback('0.0.0.0'), isLoopback('::'), isLoopback('127.example.com'), isLoopback('192.168.0.1')]).toEqual([false, false, false, false]);
  });
});

describe('the model API key', () => {
  it('can come from a file (kept out of the environment tools could read in /proc), not from both places', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'switchyard-model-key-')), 'model-key');
    writeFileSync(file, 'sk-model-0123456789\n');
    expect(loadConfig({ SWITCHYARD_MODEL_API_KEY_FILE: file }).modelApiKey).toBe('sk-model-0123456789');
    expect(() => loadConfig({ SWITCHYARD_MODEL_API_KEY_FILE: file, SWITCHYARD_MODEL_API_KEY: 'x' })).toThrow(/not both/);
    expect(() => loadConfig({ SWITCHYARD_MODEL_API_KEY_FILE: `${file}.missing` })).toThrow(/cannot read .*ENOENT/);
  });
});

describe('docker compose', () => {
  interface Service { environment: Record<string, string>; secrets?: string[] }
  const compose = readYaml<{ services: Record<string, Service>; secrets: Record<string, { file: string }> }>('docker-compose.yml');
  const defaultFile = (name: string) => /^\$\{[A-Z_]+:-(.+)\}$/.exec(compose.secrets[name]!.file)![1]!;

  it('the engine takes its keys from a secret file; the load generator sends the key labelled loadgen in it', () => {
    const engine = compose.services['engine']!;
    const loadgen = compose.services['loadgen']!;
    expect(engine.secrets).toEqual(['api-keys', 'postgres-password']);
    expect(loadgen.secrets).toEqual(['loadgen-key']);
    // The engine's own configuration, with the demo key file: valid on 0.0.0.0 because it has keys.
    const withDefaults = Object.fromEntries(Object.entries(engine.environment).map(([k, v]) => [k, String(v).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1')]));
    const config = loadConfig({ ...withDefaults, SWITCHYARD_API_KEYS_FILE: defaultFile('api-keys'), SWITCHYARD_DB_PASSWORD_FILE: defaultFile('postgres-password') });
    expect(config.host).toBe('0.0.0.0');
    // The database password comes from its secret file, one line, and is not in the URL.
    expect(config.store).toMatchObject({ kind: 'postgres', url: 'postgres://switchyard@postgres:5432/switchyard', password: readFileSync(defaultFile('postgres-password'), 'utf8').trim() });
    expect(config.toolFaults).toBe(true);
    const loadgenKey = readFileSync(defaultFile('loadgen-key'), 'utf8').trim();
    expect(new Authenticator(config.apiKeys).identify(loadgenKey)).toEqual({ keyId: 'loadgen', trigger: 'loadgen' });
    expect(loadgen.environment['SWITCHYARD_API_KEY_FILE']).toBe('/run/secrets/loadgen-key');
    expect(engine.environment['SWITCHYARD_API_KEYS_FILE']).toBe('/run/secrets/api-keys');
  });
});
