// The hostile-tool suite of issue 21: a real engine (`node src/main.ts` on SQLite, with an API-keys file, a model-key
// file, a database-password file, and a directory standing in for compose's /run/secrets) runs hostile Bun tools
// (fixtures/hostile/hostile.ts). Every escape the attack found fails in the sandbox, as this machine enforces it; the
// control at the end runs the same attempts unconfined (SWITCHYARD_TOOL_SANDBOX=off) and they succeed, so each
// assertion here could fail.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { processStartTime } from '../../src/engine/runtime/process-records.ts';
import { ToolRuntime, type ToolResult } from '../../src/engine/runtime/tool-runtime.ts';
import { eventually } from '../support/engine.ts';
import { startEngineProcess, type EngineProcess } from '../support/engine-process.ts';
import { createTestTelemetry } from '../support/telemetry.ts';
import { EXAMPLE_TOOLS_DIR, FIXTURES_DIR, fixtureTool, processAlive } from './tools.ts';

const HOSTILE = join(FIXTURES_DIR, 'hostile', 'hostile.ts');
const KEY = 'sandbox-test-key-0123456789abcdef';

let dir: string;
let engine: EngineProcess;
const files: Record<'apiKeys' | 'modelKey' | 'dbPassword' | 'runSecret' | 'db' | 'runtimeDir', string> = {} as never;

function writeProject(root: string): string {
  const project = join(root, 'project');
  mkdirSync(join(project, 'tools'), { recursive: true });
  mkdirSync(join(project, 'tasks'), { recursive: true });
  const tools: Record<string, string> = {
    hostile: '',
    hostile_offline: 'sandbox:\n  network: false\n',
    hostile_small: 'sandbox:\n  memory_mb: 512\n',
  };
  for (const [id, extra] of Object.entries(tools)) {
    writeFileSync(join(project, 'tools', `${id}.yaml`), `id: ${id}\ndescription: a hostile tool\nscript: ${HOSTILE}\ntimeout_ms: 60000\n${extra}`);
  }
  writeFileSync(join(project, 'tools', 'victim.yaml'), `id: victim\ndescription: another caller's tool\nscript: ${join(EXAMPLE_TOOLS_DIR, 'echo.ts')}\ntimeout_ms: 600000\n`);
  for (const id of [...Object.keys(tools), 'victim']) {
    writeFileSync(join(project, 'tasks', `${id}.yaml`), `id: ${id}\ndescription: runs ${id}\ntool: ${id}\ninput: "{{ input }}"\n`);
  }
  return project;
}

async function api(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(engine.url + path, {
    method, headers: { authorization: `Bearer ${KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/** Runs a hostile task to its end and returns its execution. */
async function hostile(task: string, input: Record<string, unknown>): Promise<any> {
  const { status, body } = await api('POST', `/api/v1/tasks/${task}/executions/sync`, { input });
  expect(status).toBe(200);
  return body;
}

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Live processes whose parent is `parent` and whose command line contains `needle`. */
function childrenMatching(parent: number, needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (parentOf(Number(entry)) === parent && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-sandbox-test-'));
  Object.assign(files, {
    apiKeys: join(dir, 'api-keys'), modelKey: join(dir, 'model-key'), dbPassword: join(dir, 'db-password'),
    runSecret: join(dir, 'run-secrets', 'db_password'), db: join(dir, 'data', 'engine.db'), runtimeDir: join(dir, 'data', 'tool-processes'),
  });
  mkdirSync(join(dir, 'run-secrets'));
  mkdirSync(join(dir, 'data'));
  writeFileSync(files.apiKeys, `tester ${KEY}\n`);
  writeFileSync(files.modelKey, 'sk-model-key-never-for-tools\n');
  writeFileSync(files.dbPassword, 'db-password-never-for-tools\n');
  writeFileSync(files.runSecret, 'run-secret-never-for-tools\n');
  engine = await startEngineProcess({
    SWITCHYARD_DB: files.db, SWITCHYARD_RUNTIME_DIR: files.runtimeDir, SWITCHYARD_PROJECT_DIR: writeProject(dir),
    SWITCHYARD_API_KEYS_FILE: files.apiKeys, SWITCHYARD_MODEL_API_KEY_FILE: files.modelKey, SWITCHYARD_DB_PASSWORD_FILE: files.dbPassword,
    SWITCHYARD_TOOL_SANDBOX: 'enforce', OTEL_SDK_DISABLED: 'true',
  });
}, 60_000);

afterAll(async () => {
  await engine?.kill();
  rmSync(dir, { recursive: true, force: true });
});

describe('the tool sandbox, as this machine enforces it', () => {
  it('the engine reports at start what it enforces, in its log and in GET /api/v1/definitions', async () => {
    const logged = engine.logs().find((l) => String(l['msg']).startsWith('tool sandbox:'));
    expect(logged?.['msg']).toMatch(/^tool sandbox: enforced \(Landlock ABI \d+\)/);
    const { body } = await api('GET', '/api/v1/definitions');
    expect(body.tool_sandbox).toEqual(logged?.['tool_sandbox']);
    // This machine (kernel 6.18, Landlock ABI 7): everything the sandbox knows how to enforce.
    expect(body.tool_sandbox).toMatchObject({
      mode: 'enforce', runs_tools: true,
      enforced: { filesystem: true, signals: true, abstract_unix_sockets: true, network: true, memory: true, processes: true },
    });
    expect(body.tools.find((t: { id: string }) => t.id === 'hostile_offline').sandbox).toEqual({ memory_mb: null, processes: null, network: false });
  });

  it('a tool cannot read the engine\'s key files, environment, store, records or secrets, nor write outside its scratch directory', async () => {
    // A finished run whose stored output the tool then tries to rewrite.
    const victim = await hostile('victim', { keep: 'me' });
    expect(victim.status).toBe('success');
    const enginePid = engine.child.pid!;
    const helperPid = childrenMatching(enginePid, 'spawn-helper')[0]!;
    expect(helperPid).toBeGreaterThan(0);
    const run = await hostile('hostile', {
      read: [
        files.apiKeys, files.modelKey, files.dbPassword, files.runSecret, files.db, `/proc/${enginePid}/environ`, `/proc/${enginePid}/cmdline`,
        `/proc/${enginePid}/status`, `/proc/${helperPid}/environ`, '/etc/passwd', join(process.cwd(), 'package.json'), '/proc/self/status',
      ],
      list: [files.runtimeDir, join(dir, 'run-secrets'), '/proc', `/proc/${enginePid}/fd`, process.cwd()],
      write: [join(files.runtimeDir, '1'), join(dir, 'data', 'planted'), join(FIXTURES_DIR, 'hostile', 'planted'), join(tmpdir(), `planted-${process.pid}`)],
      sqlite: files.db,
      scratch: true,
    });
    expect(run.status).toBe('success');
    const report = run.output as Record<string, string>;
    const denied = Object.entries(report).filter(([what]) => !['read /proc/self/status', 'scratch'].includes(what));
    expect(denied.length).toBe(21);
    for (const [what, result] of denied) expect([what, result]).toEqual([what, what === 'sqlite' ? expect.stringMatching(/unable to open|SQLITE_CANTOPEN|EACCES/i) : 'EACCES']);
    // What a tool needs still works: its own /proc entry, its private scratch directory.
    expect(report['read /proc/self/status']).toBe('ok');
    expect(report.scratch).toBe('ok');
    // The stored run is untouched.
    const stored = await api('GET', `/api/v1/executions/${victim.id}`);
    expect(stored.body.output).toEqual(victim.output);
    expect(stored.body.caller_key_id).toBe('tester');
  });

  it('a tool cannot signal the engine, the spawn helper or another caller\'s tool', async () => {
    const started = await api('POST', '/api/v1/tasks/victim/executions', { input: { _fault: 'hang' } });
    expect(started.status).toBe(202);
    const enginePid = engine.child.pid!;
    const helperPid = childrenMatching(enginePid, 'spawn-helper')[0]!;
    const victimPid = (await eventually(async () => childrenMatching(helperPid, 'echo.ts'), (pids) => pids.length === 1, 20_000))[0]!;
    const run = await hostile('hostile', { kill: [enginePid, helperPid, victimPid] });
    expect(run.output).toEqual({ [`kill ${enginePid}`]: 'EPERM', [`kill ${helperPid}`]: 'EPERM', [`kill ${victimPid}`]: 'EPERM' });
    for (const pid of [enginePid, helperPid, victimPid]) expect(processAlive(pid)).toBe(true);
    expect((await api('POST', `/api/v1/executions/${started.body.id}/cancel`)).status).toBeLessThan(300);
  });

  it('a tool cannot start a process by default (processes: 1)', async () => {
    const run = await hostile('hostile', { spawn: true });
    expect(run.output).toEqual({ spawn: 'EAGAIN' });
  });

  it('memory is capped by the definition: a tool with memory_mb 512 does not reach 1.2 GB', async () => {
    const run = await hostile('hostile_small', { allocate_mb: 1200 });
    // Bun either throws (RangeError: Out of memory, reported by the tool) or aborts (the run fails).
    if (run.status === 'success') expect(run.output.allocate).toMatch(/^failed at \d+ MB: RangeError: Out of memory/);
    else expect(run.status).toBe('failed');
    if (run.status === 'success') expect(Number(/failed at (\d+)/.exec(run.output.allocate)![1])).toBeLessThan(512);
  });

  it('network access is a definition setting: allowed by default, denied with network: false', async () => {
    const url = `${engine.url}/healthz`;
    expect((await hostile('hostile', { connect: url })).output).toEqual({ connect: expect.stringMatching(/^ok \d+$/) });
    const offline = await hostile('hostile_offline', { connect: url });
    expect(offline.output.connect).not.toMatch(/^ok/);
  });

  it('runtime records are private: the directory 0700, each record 0600', async () => {
    const started = await api('POST', '/api/v1/tasks/victim/executions', { input: { _fault: 'hang' } });
    const own = await eventually(async () => readdirSync(files.runtimeDir).filter((name) => readdirSync(join(files.runtimeDir, name)).length > 1), (d) => d.length === 1, 20_000);
    const engineDir = join(files.runtimeDir, own[0]!);
    expect(statSync(files.runtimeDir).mode & 0o777).toBe(0o700);
    expect(statSync(engineDir).mode & 0o777).toBe(0o700);
    for (const record of readdirSync(engineDir)) expect([record, statSync(join(engineDir, record)).mode & 0o777]).toEqual([record, 0o600]);
    await api('POST', `/api/v1/executions/${started.body.id}/cancel`);
  });
});

describe('the control: the same attempts without the sandbox', () => {
  let sleeper: ChildProcess;
  afterAll(() => sleeper?.kill('SIGKILL'));

  it('succeed when SWITCHYARD_TOOL_SANDBOX=off (so the assertions above could fail)', async () => {
    const t = createTestTelemetry();
    const runtime = new ToolRuntime({ telemetry: t.telemetry, baseEnv: { PATH: process.env.PATH }, sandbox: 'off' });
    sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
    try {
      expect(runtime.sandbox).toMatchObject({ mode: 'off', runs_tools: true, enforced: { filesystem: false } });
      const result: ToolResult = await runtime.execute({
        tool: fixtureTool('hostile/hostile'), executionId: 'control',
        input: { read: [files.apiKeys, `/proc/${process.pid}/environ`], list: [files.runtimeDir], sqlite: files.db, kill: [sleeper.pid!], spawn: true },
      });
      expect(result.ok && result.result).toEqual({
        [`read ${files.apiKeys}`]: 'ok', [`read /proc/${process.pid}/environ`]: 'ok', [`list ${files.runtimeDir}`]: 'ok', sqlite: 'ok', [`kill ${sleeper.pid}`]: 'ok', spawn: 'ok',
      });
    } finally {
      await runtime.shutdown();
      await t.shutdown();
    }
  });

  it('a killed engine\'s sandbox directory (guard copy, scratch directories) is removed by the next runtime; a live one\'s is kept', async () => {
    const t = createTestTelemetry();
    // A pid with a start time no live process has, and this process with its own.
    const dead = join(tmpdir(), `switchyard-tools-${process.pid}-1-Dead42`);
    const live = join(tmpdir(), `switchyard-tools-${process.pid}-${processStartTime(process.pid)}-Live42`);
    for (const path of [dead, live]) mkdirSync(join(path, 'scratch', 'call-x'), { recursive: true });
    const runtime = new ToolRuntime({ telemetry: t.telemetry, baseEnv: { PATH: process.env.PATH } });
    try {
      expect(existsSync(dead)).toBe(false);
      expect(existsSync(live)).toBe(true);
    } finally {
      rmSync(live, { recursive: true, force: true });
      await runtime.shutdown();
      await t.shutdown();
    }
    expect(existsSync(dirname(runtime.scratchRoot!))).toBe(false);
  });

  it('a tool whose directory holds the engine\'s working directory (or is /) is refused, not given the engine\'s files', async () => {
    const t = createTestTelemetry();
    const runtime = new ToolRuntime({ telemetry: t.telemetry, baseEnv: { PATH: process.env.PATH } });
    try {
      for (const script of [join(process.cwd(), 'tool.ts'), join(dirname(process.cwd()), 'tool.ts'), '/tool.ts']) {
        const result = await runtime.execute({ tool: fixtureTool('print-env', { script }), executionId: 'top', input: {} });
        expect([script, !result.ok && result.error.code]).toEqual([script, 'TOOL_SANDBOX_UNAVAILABLE']);
      }
      expect((await runtime.execute({ tool: fixtureTool('print-env'), executionId: 'own-dir', input: {} })).ok).toBe(true);
    } finally {
      await runtime.shutdown();
      await t.shutdown();
    }
  });

  it('a host that cannot enforce the sandbox refuses tools unless the operator opts out', async () => {
    const t = createTestTelemetry();
    const missing = new ToolRuntime({ telemetry: t.telemetry, baseEnv: { PATH: process.env.PATH }, sandboxWrapper: join(dir, 'no-such-wrapper') });
    try {
      expect(missing.sandbox).toMatchObject({ mode: 'enforce', runs_tools: false, problem: expect.stringContaining('SWITCHYARD_TOOL_SANDBOX=off') });
      const result = await missing.execute({ tool: fixtureTool('print-env'), executionId: 'refused', input: {} });
      expect(!result.ok && result.error).toMatchObject({ kind: 'start', code: 'TOOL_SANDBOX_UNAVAILABLE' });
      expect(result.pid).toBeNull();
    } finally {
      await missing.shutdown();
      await t.shutdown();
    }
  });
});

describe('configuration', () => {
  it('SWITCHYARD_TOOL_SANDBOX, _SANDBOX_MEMORY_MB and _SANDBOX_PROCESSES: defaults, values, refusals', () => {
    expect(loadConfig({})).toMatchObject({ toolSandbox: 'enforce', sandboxMemoryMb: 1024, sandboxProcesses: 1, sandboxWrapper: expect.stringMatching(/\/build\/switchyard-sandbox$/) });
    expect(loadConfig({ SWITCHYARD_TOOL_SANDBOX: 'off', SWITCHYARD_TOOL_SANDBOX_MEMORY_MB: '2048', SWITCHYARD_TOOL_SANDBOX_PROCESSES: '4', SWITCHYARD_SANDBOX_WRAPPER: '/opt/w' }))
      .toMatchObject({ toolSandbox: 'off', sandboxMemoryMb: 2048, sandboxProcesses: 4, sandboxWrapper: '/opt/w' });
    for (const env of [{ SWITCHYARD_TOOL_SANDBOX: 'no' }, { SWITCHYARD_TOOL_SANDBOX_MEMORY_MB: '256' }, { SWITCHYARD_TOOL_SANDBOX_PROCESSES: '0' }]) {
      expect(() => loadConfig(env), JSON.stringify(env)).toThrow(ConfigError);
    }
  });
});
