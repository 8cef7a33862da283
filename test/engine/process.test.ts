import { createServer } from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { TICKET, eventually, toolPids } from '../support/engine.ts';
import { startEngineProcess, ENGINE_ARGS } from '../support/engine-process.ts';

/** The engine as users run it: `node src/main.ts`. */
const dir = mkdtempSync(join(tmpdir(), 'switchyard-process-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An engine on its own store file in this test's directory. */
const startEngine = (name: string, env: Record<string, string>) => startEngineProcess({ SWITCHYARD_DB: join(dir, `${name}.db`), ...env });

/** The exit code of an engine that is expected to refuse to start; one that starts anyway is killed, not left behind. */
async function exitCodeOf(child: ChildProcess, withinMs = 20_000): Promise<number | null | 'still running'> {
  const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
  const late = new Promise<'still running'>((resolve) => setTimeout(resolve, withinMs, 'still running').unref());
  const result = await Promise.race([closed, late]);
  if (result === 'still running') {
    child.kill('SIGKILL');
    await closed;
  }
  return result;
}

const post = (url: string, path: string, body: unknown, key?: string) =>
  fetch(url + path, {
    method: 'POST', headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) }, body: JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, body: await r.json() as any }));

describe('the engine process: authentication', () => {
  it('refuses to start on a non-loopback address without API keys: exit 2, a fatal log line that says what to set', async () => {
    const child = spawn(process.execPath, [...ENGINE_ARGS], {
      env: { ...process.env, SWITCHYARD_HOST: '0.0.0.0', SWITCHYARD_PORT: '0', SWITCHYARD_DB: join(dir, 'exposed.db'), OTEL_SDK_DISABLED: 'true', SWITCHYARD_API_KEYS: '', SWITCHYARD_API_KEYS_FILE: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk));
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk));
    expect(await new Promise<number | null>((resolve) => child.once('close', resolve))).toBe(2);
    const last = JSON.parse(out.trim().split('\n').at(-1)!) as { level: string; msg: string };
    expect(last.level).toBe('fatal');
    expect(last.msg).toMatch(/SWITCHYARD_HOST=0\.0\.0\.0 is not a loopback address and no API keys are configured; set SWITCHYARD_API_KEYS_FILE/);
  }, 30_000);

  it('refuses to start with a model key over plain HTTP to a host that is not loopback: exit 2, one fatal line, the key in no line', async () => {
    const keyFile = join(dir, 'model-key');
    writeFileSync(keyFile, 'sk-plain-http-9c8b7a6f5e4d\n', { mode: 0o600 });
    const child = spawn(process.execPath, [...ENGINE_ARGS], {
      env: { ...process.env, SWITCHYARD_PORT: '0', SWITCHYARD_DB: join(dir, 'plain-http.db'), OTEL_SDK_DISABLED: 'true',
        SWITCHYARD_MODEL_BASE_URL: 'http://10.20.30.40:8000/v1', SWITCHYARD_MODEL_API_KEY_FILE: keyFile, SWITCHYARD_MODEL_API_KEY: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk));
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk));
    expect(await exitCodeOf(child)).toBe(2);
    const last = JSON.parse(out.trim().split('\n').at(-1)!) as { level: string; msg: string };
    expect(last.level).toBe('fatal');
    expect(last.msg).toMatch(/SWITCHYARD_MODEL_BASE_URL: http:\/\/10\.20\.30\.40:8000 is plain HTTP to a host that is not loopback/);
    expect(out).not.toContain('9c8b7a6f5e4d');
  }, 30_000);

  it('on 0.0.0.0 with a key file: /api refuses a missing or wrong key, takes a valid one; health needs none', async () => {
    const keys = join(dir, 'api-keys');
    writeFileSync(keys, '# id key [trigger]\nops process-test-key-0123456789\n', { mode: 0o600 });
    const engine = await startEngine('keys', { SWITCHYARD_HOST: '0.0.0.0', SWITCHYARD_API_KEYS_FILE: keys, OTEL_SDK_DISABLED: 'true' });
    try {
      const url = engine.url.replace('0.0.0.0', '127.0.0.1');
      const path = '/api/v1/workflows/quick_answer/executions/sync';
      expect((await post(url, path, { input: { question: 'q' } })).status).toBe(401);
      expect((await post(url, path, { input: { question: 'q' } }, 'wrong-key-0123456789abcdef')).status).toBe(401);
      const accepted = await post(url, path, { input: { question: 'q' } }, 'process-test-key-0123456789');
      expect(accepted).toMatchObject({ status: 200, body: { status: 'success', caller_key_id: 'ops' } });
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect(engine.logs().some((l) => String(l['msg']).startsWith('no API keys configured'))).toBe(false);
    } finally {
      engine.child.kill('SIGKILL');
      await engine.exited;
    }
  }, 60_000);

  it('on loopback without keys: serves without authentication and warns once', async () => {
    const engine = await startEngine('open', { OTEL_SDK_DISABLED: 'true' });
    try {
      expect((await post(engine.url, '/api/v1/workflows/quick_answer/executions/sync', { input: { question: 'q' } })).body).toMatchObject({ status: 'success', caller_key_id: null });
      expect(engine.logs().filter((l) => String(l['msg']).startsWith('no API keys configured')).map((l) => l['level'])).toEqual(['warn']);
    } finally {
      engine.child.kill('SIGKILL');
      await engine.exited;
    }
  }, 60_000);
});

describe('the engine process: fault injection', () => {
  it('without SWITCHYARD_TOOL_FAULTS a caller\'s fault fields change nothing; the store file survives a request naming it', async () => {
    const engine = await startEngine('no-faults', { OTEL_SDK_DISABLED: 'true', SWITCHYARD_TOOL_FAULTS: '0' });
    const dbPath = join(dir, 'no-faults.db');
    try {
      const before = readFileSync(dbPath).subarray(0, 16).toString('latin1');
      expect(before).toBe('SQLite format 3\0');
      const attack = await post(engine.url, '/api/v1/tasks/customer_lookup/executions/sync', {
        input: { email: 'ada@analytical.example', _fault: 'spawn_children', _pid_file: dbPath, _children: 100, _respond: true },
      });
      expect(attack.body).toMatchObject({ status: 'success', output: { found: true } });
      const failing = await post(engine.url, '/api/v1/workflows/support_triage/executions/sync', { input: { ...TICKET, fault: 'fail' } });
      expect(failing.body.status).toBe('success');
      expect(readFileSync(dbPath).subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0');
      expect(toolPids(engine.child.pid!)).toEqual([]);
      expect((await fetch(`${engine.url}/readyz`)).status).toBe(200);
    } finally {
      engine.child.kill('SIGKILL');
      await engine.exited;
    }
    // The control: with the switch on, the same fault does fail the run.
    const enabled = await startEngine('faults', { OTEL_SDK_DISABLED: 'true', SWITCHYARD_TOOL_FAULTS: '1' });
    try {
      expect((await post(enabled.url, '/api/v1/workflows/support_triage/executions/sync', { input: { ...TICKET, fault: 'fail' } })).body.status).toBe('failed');
    } finally {
      enabled.child.kill('SIGKILL');
      await enabled.exited;
    }
  }, 60_000);
});

describe('the engine process', () => {
  it('runs normally with no Collector listening and says so once per signal, in one line without a stack, not per failure', async () => {
    const engine = await startEngine('no-collector', {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_EXPORTER_OTLP_TIMEOUT: '1000', OTEL_METRIC_EXPORT_INTERVAL: '200', OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    try {
      // Known before "ready": the receiver's port refused the start-up probe.
      const warnings = () => engine.logs().filter((l) => String(l['msg']).includes('telemetry export of'));
      expect(warnings().map((l) => l['signal']).sort()).toEqual(['logs', 'metrics', 'traces']);
      for (let i = 0; i < 5; i++) {
        const { body } = await post(engine.url, '/api/v1/workflows/quick_answer/executions/sync', { input: { question: `q${i}` } });
        expect(body.status).toBe('success');
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      // The exports that failed since were counted, not logged again.
      expect(warnings().map((l) => l['signal']).sort()).toEqual(['logs', 'metrics', 'traces']);
      for (const warning of warnings()) {
        expect(warning['msg']).toMatch(/failing \(no OTLP receiver answers at http:\/\/127\.0\.0\.1:9\); the engine keeps running/);
        expect(warning['err'], 'no stack trace').toBeUndefined();
      }
    } finally {
      engine.child.kill('SIGKILL');
      await engine.exited;
    }
  }, 60_000);

  it('refuses invalid definitions: exits 2, and its last log line names the file and the field', async () => {
    const project = join(dir, 'broken-project');
    mkdirSync(join(project, 'workflows'), { recursive: true });
    writeFileSync(join(project, 'workflows', 'broken.yaml'), 'id: broken\ntasks: 5\n');
    const child = spawn(process.execPath, [...ENGINE_ARGS], {
      env: { ...process.env, SWITCHYARD_PORT: '0', SWITCHYARD_DB: join(dir, 'broken.db'), SWITCHYARD_PROJECT_DIR: project, OTEL_SDK_DISABLED: 'true' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code).toBe(2);
    const last = JSON.parse(out.trim().split('\n').at(-1)!) as { level: string; problems: string[] };
    expect(last.level).toBe('fatal');
    expect(last.problems.join('\n')).toMatch(/broken\.yaml:2: tasks: /);
  }, 30_000);

  it('refuses a store file that is not a database: exits 2 with one fatal line naming the file, never "ready"', async () => {
    const db = join(dir, 'overwritten.db');
    writeFileSync(db, Buffer.alloc(8192, 'garbage '));
    const child = spawn(process.execPath, [...ENGINE_ARGS], {
      env: { ...process.env, SWITCHYARD_PORT: '0', SWITCHYARD_DB: db, OTEL_SDK_DISABLED: 'true' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code).toBe(2);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { level: string; msg: string });
    expect(lines.at(-1)).toMatchObject({ level: 'fatal' });
    expect(lines.at(-1)!.msg).toContain(`the execution store ${db} cannot be opened: file is not a database`);
    expect(lines.some((l) => l.msg === 'switchyard engine ready')).toBe(false);
  }, 30_000);

  it('refuses a project whose templates name a task that does not exist: exit 2, the file, the field and the known tasks in one fatal line', async () => {
    const project = join(dir, 'typo-project');
    mkdirSync(join(project, 'workflows'), { recursive: true });
    mkdirSync(join(project, 'tools'), { recursive: true });
    writeFileSync(join(project, 'tools', 'echo.yaml'), `id: echo\ndescription: d\nscript: ${join(process.cwd(), 'examples', 'tools', 'echo.ts')}\n`);
    const tasks = (ref: string) => `tasks:\n  - id: classify\n    tool: echo\n  - id: notify\n    tool: echo\n    input: { category: "{{ ${ref} }}" }\n`;
    writeFileSync(join(project, 'workflows', 'typo.yaml'), `id: typo\ndescription: d\n${tasks('tasks.clasify.output.category')}`);
    const start = () => spawn(process.execPath, [...ENGINE_ARGS], {
      env: { ...process.env, SWITCHYARD_PORT: '0', SWITCHYARD_DB: join(dir, 'typo.db'), SWITCHYARD_PROJECT_DIR: project, OTEL_SDK_DISABLED: 'true' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const child = start();
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk));
    expect(await exitCodeOf(child)).toBe(2);
    const lines = out.trim().split('\n').map((line) => JSON.parse(line) as { level: string; msg: string; problems?: string[] });
    expect(lines.filter((l) => l.level === 'fatal')).toHaveLength(1);
    expect(lines.at(-1)!.problems).toEqual([
      expect.stringMatching(/typo\.yaml:8: task 2 "notify", input\.category: \{\{ tasks\.clasify\.output\.category \}\}: no task "clasify" in this workflow; did you mean "classify"\? \(tasks that run before this one: classify\)$/),
    ]);
    // Each problem is also a line of its own, readable as it is; the fatal line's message is one line too.
    expect(lines.filter((l) => l.level === 'error').map((l) => l.msg)).toEqual(lines.at(-1)!.problems);
    expect(lines.at(-1)!.msg).toMatch(/^invalid project definitions: 1 problem \(above\); fix them and start again$/);
    expect(lines.some((l) => l.msg === 'switchyard engine ready')).toBe(false);

    // The same project with the name right starts.
    writeFileSync(join(project, 'workflows', 'typo.yaml'), `id: typo\ndescription: d\n${tasks('tasks.classify.output.category')}`);
    const fixed = start();
    let fixedOut = '';
    fixed.stdout!.on('data', (chunk: Buffer) => (fixedOut += chunk));
    const closed = new Promise<number | null>((resolve) => fixed.once('close', resolve));
    try {
      await eventually(async () => fixedOut, (text) => text.includes('switchyard engine ready') || fixed.exitCode !== null, 20_000);
      expect(fixedOut).toContain('switchyard engine ready');
    } finally {
      fixed.kill('SIGKILL');
      await closed;
    }
  }, 60_000);

  it('on a port already in use: one fatal line that says so and what to set, exit 2, no "ready"', async () => {
    const holder = createNetServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as AddressInfo).port;
    try {
      const child = spawn(process.execPath, [...ENGINE_ARGS], {
        env: { ...process.env, SWITCHYARD_PORT: String(port), SWITCHYARD_DB: join(dir, 'port-in-use.db'), OTEL_SDK_DISABLED: 'true' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => (out += chunk));
      child.stderr!.on('data', (chunk: Buffer) => (out += chunk));
      expect(await exitCodeOf(child)).toBe(2);
      const lines = out.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
      const fatal = lines.filter((l) => l['level'] === 'fatal');
      expect(fatal).toHaveLength(1);
      expect(fatal[0]).toMatchObject({ code: 'EADDRINUSE', port });
      expect(fatal[0]!['msg']).toBe(`cannot listen on 127.0.0.1:${port}: the address is already in use (another engine or program holds it); `
        + 'set SWITCHYARD_PORT (or SWITCHYARD_HOST) to a free one, or stop what holds it');
      expect(lines.at(-1)).toBe(fatal[0]);
      expect(lines.some((l) => l['msg'] === 'switchyard engine ready')).toBe(false);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  }, 30_000);

  it('on SIGTERM with no Collector listening, the engine stops without waiting for a flush that cannot succeed', async () => {
    // A bound far beyond the test's timeout: were the flush waited for, the test would time out.
    const engine = await startEngine('flush-refused', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', SWITCHYARD_TELEMETRY_FLUSH_MS: '600000' });
    const { body } = await post(engine.url, '/api/v1/workflows/quick_answer/executions/sync', { input: { question: 'q' } });
    expect(body.status).toBe('success');
    engine.child.kill('SIGTERM');
    expect(await engine.exited).toBe(0);
    const messages = engine.logs().map((l) => String(l['msg']));
    expect(messages).not.toContain('telemetry flush did not finish in time; exiting without the last spans and metric points');
    expect(messages).toContain('shutdown complete');
  }, 30_000);

  it('on SIGTERM with a Collector that takes connections but never answers, the last telemetry flush is cut off at its bound and the engine exits 0', async () => {
    const hanging = createServer(() => {});
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    try {
      const endpoint = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
      const engine = await startEngine('flush-bound', { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, SWITCHYARD_TELEMETRY_FLUSH_MS: '300' });
      const { body } = await post(engine.url, '/api/v1/workflows/quick_answer/executions/sync', { input: { question: 'q' } });
      expect(body.status).toBe('success');
      engine.child.kill('SIGTERM');
      expect(await engine.exited).toBe(0);
      const messages = engine.logs().map((l) => String(l['msg']));
      expect(messages).toContain('telemetry flush did not finish in time; exiting without the last spans and metric points');
      expect(messages).toContain('shutdown complete');
    } finally {
      hanging.closeAllConnections();
      hanging.close();
    }
  }, 60_000);

  it('on SIGTERM finishes in-flight work within the grace period, then exits 0', async () => {
    const engine = await startEngine('graceful', { OTEL_SDK_DISABLED: 'true', SWITCHYARD_SHUTDOWN_GRACE_MS: '10000' });
    const { body } = await post(engine.url, '/api/v1/workflows/support_triage/executions', { input: { ...TICKET, fault: 'slow', delay_ms: 1_500 } });
    const store = new SqliteStore(join(dir, 'graceful.db'));
    try {
      await eventually(() => store.getExecution(body.id), (r) => r?.lastStartedTask === 'lookup');
      engine.child.kill('SIGTERM');
      expect(await engine.exited).toBe(0);
      expect(await store.getExecution(body.id)).toMatchObject({ status: 'success', finalizationPath: 'completed' });
    } finally {
      await store.close();
    }
  }, 60_000);

  it('fails what is still running when the grace period ends (force_failed), and kills its tools', async () => {
    const engine = await startEngine('forced', { OTEL_SDK_DISABLED: 'true', SWITCHYARD_SHUTDOWN_GRACE_MS: '300' });
    const { body } = await post(engine.url, '/api/v1/workflows/support_triage/executions', { input: { ...TICKET, fault: 'hang' } });
    const store = new SqliteStore(join(dir, 'forced.db'));
    try {
      await eventually(() => store.getExecution(body.id), (r) => r?.lastStartedTask === 'lookup');
      const tools = await eventually(async () => toolPids(engine.child.pid!), (pids) => pids.length > 0);
      engine.child.kill('SIGTERM');
      expect(await engine.exited).toBe(0);
      for (const pid of tools) expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
      expect(await store.getExecution(body.id)).toMatchObject({ status: 'failed', finalizationPath: 'force_failed', error: { code: 'shutdown' } });
    } finally {
      await store.close();
    }
  }, 60_000);
});
