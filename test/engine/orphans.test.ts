// No orphans: a killed engine's spawn helper and tools (and what they forked) die with it: the helper kills
// every tool group when its link to the engine closes, and each tool's guard kills its group when the helper
// goes; where neither can act (the helper and the tools are stopped), the next engine to start kills them from
// its records, and never a process whose pid matches a record but whose start time does not. Real engine
// processes, real Bun tools, real signals; every wait is bounded, nothing is timed.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { ToolRuntime, type ToolResult } from '../../src/engine/runtime/tool-runtime.ts';
import { eventually, spawnHelperPid, toolPids } from '../support/engine.ts';
import { startEngineProcess, type EngineProcess as RunningEngine, ENGINE_ARGS } from '../support/engine-process.ts';
import { createTestTelemetry } from '../support/telemetry.ts';
import { leftAfterKill, loadExampleTool, processAlive, processGroupMembers, stateOf } from '../runtime/tools.ts';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-orphans-'));
/** Every process a test started or found, killed at the end whatever happened (SIGKILL also ends a stopped one). */
const started = new Set<number>();
const engines: RunningEngine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) {
    engine.child.kill('SIGKILL');
    await engine.exited;
  }
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  started.clear();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A project whose one task runs the sample echo tool with a long timeout, so only the test ends its calls. */
function stubbornProject(): string {
  const project = join(dir, 'project');
  mkdirSync(join(project, 'tools'), { recursive: true });
  mkdirSync(join(project, 'tasks'), { recursive: true });
  writeFileSync(join(project, 'tools', 'stubborn.yaml'),
    `id: stubborn\ndescription: echo that the test keeps running\nscript: ${resolve('examples/tools/echo.ts')}\ntimeout_ms: 600000\n`);
  writeFileSync(join(project, 'tasks', 'stubborn.yaml'), 'id: stubborn\ndescription: runs stubborn\ntool: stubborn\ninput: "{{ input }}"\n');
  return project;
}

async function startEngine(name: string): Promise<RunningEngine> {
  mkdirSync(join(dir, name), { recursive: true });
  const engine = await startEngineProcess({
    SWITCHYARD_DB: join(dir, name, 'engine.db'), SWITCHYARD_PROJECT_DIR: stubbornProject(), SWITCHYARD_TOOL_FAULTS: '1', OTEL_SDK_DISABLED: 'true',
    // spawn_children forks Bun children, which cannot start in the sandbox (README, Tool processes).
    SWITCHYARD_TOOL_SANDBOX: 'off',
  });
  engines.push(engine);
  return engine;
}

/** Starts one call per fault and returns the process groups of the engine's tools once every one is complete. */
async function toolGroups(engine: RunningEngine, faults: string[]): Promise<number[][]> {
  for (const fault of faults) {
    const response = await fetch(`${engine.url}/api/v1/tasks/stubborn/executions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: { _fault: fault } }),
    });
    expect(response.status).toBe(202);
  }
  // spawn_children: the tool and its 2 children, all in the tool's group; hang: the tool alone.
  const wanted = faults.map((fault) => (fault === 'spawn_children' ? 3 : 1)).sort();
  const groups = await eventually(async () => toolPids(engine.child.pid!).map((pid) => processGroupMembers(pid)),
    (found) => JSON.stringify(found.map((members) => members.length).sort()) === JSON.stringify(wanted), 20_000);
  for (const pid of groups.flat()) started.add(pid);
  return groups;
}

function startTimeOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

/** A process of the test's own, in a process group of its own, that runs until killed. */
function bystander(): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { detached: true, stdio: 'ignore' });
  started.add(child.pid!);
  return child;
}

/**
 * A process that cannot act on its own: stopped (T), or in uninterruptible sleep (D), as a process whose
 * vfork child was stopped before it exec'd stays (seen in CI: one of seven in D for 10 s). SIGKILL ends both.
 */
const cannotAct = (state: string | undefined) => state === 'T' || state === 'D';

describe('a killed engine leaves no tool process behind', () => {
  it('SIGKILL of the engine: its spawn helper, its hanging tools and the children they forked die with it', async () => {
    const engine = await startEngine('guard');
    const groups = await toolGroups(engine, ['spawn_children', 'spawn_children', 'hang']);
    const helper = spawnHelperPid(engine.child.pid!)!;
    started.add(helper);
    const everyone = [helper, ...groups.flat()];
    expect(everyone).toHaveLength(8);
    engine.child.kill('SIGKILL');
    await engine.exited;
    expect(await leftAfterKill(() => everyone.filter(processAlive), 15_000)).toEqual([]);
  }, 60_000);

  it('SIGKILL of the engine: its helper kills even stopped tools (which no guard can help) at once', async () => {
    const engine = await startEngine('stopped');
    const groups = await toolGroups(engine, ['spawn_children', 'hang']);
    const helper = spawnHelperPid(engine.child.pid!)!;
    started.add(helper);
    const tools = groups.flat();
    for (const pid of tools) process.kill(pid, 'SIGSTOP');
    await eventually(async () => tools.map(stateOf), (states) => states.every(cannotAct));
    engine.child.kill('SIGKILL');
    await engine.exited;
    // No next engine: the helper, seeing its link to the engine close, did it.
    expect(await leftAfterKill(() => [helper, ...tools].filter(processAlive), 15_000)).toEqual([]);
  }, 60_000);

  it('a stopped helper and stopped tools cannot act: the next engine kills them from its records, and spares a reused pid', async () => {
    const first = await startEngine('reap');
    const groups = await toolGroups(first, ['spawn_children', 'spawn_children']);
    const helper = spawnHelperPid(first.child.pid!)!;
    started.add(helper);
    const everyone = [helper, ...groups.flat()];
    const leaders = groups.map((members) => members.find((pid) => toolPids(first.child.pid!).includes(pid))!);
    const runtimeDir = join(dir, 'reap', 'tool-processes');
    // The records this engine keeps: one per live tool and one for its spawn helper, named by their pids.
    const [engineDir] = readdirSync(runtimeDir);
    expect(engineDir).toMatch(new RegExp(`^${first.child.pid}-\\d+-[0-9a-f]+$`));
    expect(readdirSync(join(runtimeDir, engineDir!)).map(Number).sort()).toEqual([...leaders, helper].sort());

    for (const pid of everyone) process.kill(pid, 'SIGSTOP');
    await eventually(async () => everyone.map(stateOf), (states) => states.every(cannotAct));
    first.child.kill('SIGKILL');
    await first.exited;

    // Records left by that engine: a live process of the test's own (killed), and one whose pid is live but
    // whose start time is not the recorded one (a pid the kernel gave to another process: spared).
    const planted = bystander();
    const reused = bystander();
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const plant = (pid: number, startTime: string, toolId: string) => writeFileSync(join(runtimeDir, engineDir!, String(pid)),
      JSON.stringify({ pid, pgid: pid, start_time: startTime, boot_id: bootId, tool_id: toolId }));
    plant(planted.pid!, startTimeOf(planted.pid!), 'planted');
    plant(reused.pid!, String(Number(startTimeOf(reused.pid!)) - 1), 'reused');

    // Stopped, neither the helper nor the guards could act: everything is still there.
    expect(everyone.filter(processAlive)).toEqual(everyone);

    const second = await startEngine('reap');
    expect(await leftAfterKill(() => [...everyone, planted.pid!].filter(processAlive), 15_000)).toEqual([]);
    expect(processAlive(reused.pid!)).toBe(true);
    const killed = second.logs().filter((l) => String(l['msg']).startsWith('killed tool '));
    expect(killed.map((l) => l['pid']).sort()).toEqual([...leaders, helper, planted.pid].sort());
    expect(killed.every((l) => l['level'] === 'warn' && l['engine_pid'] === first.child.pid)).toBe(true);
    expect(killed.find((l) => l['pid'] === planted.pid)!['tool_id']).toBe('planted');
    expect(killed.find((l) => l['pid'] === helper)!['tool_id']).toBe('spawn-helper');
    // The first engine's records are gone with its directory; the second keeps its own (its helper's alone while idle).
    expect(readdirSync(runtimeDir)).toEqual([expect.stringMatching(new RegExp(`^${second.child.pid}-`))]);
  }, 90_000);
});

describe('records of a live runtime', () => {
  it('are written while a tool runs and removed when it ends; a second runtime on the same directory leaves them alone', async () => {
    const t = createTestTelemetry();
    const runtimeDir = join(dir, 'shared');
    const runtime = new ToolRuntime({ telemetry: t.telemetry, killGraceMs: 100, baseEnv: { PATH: process.env.PATH }, toolFaults: true, runtimeDir });
    let other: ToolRuntime | undefined;
    try {
      const controller = new AbortController();
      const pending: Promise<ToolResult> = runtime.execute({ tool: loadExampleTool('echo'), executionId: 'x', input: { _fault: 'hang' }, signal: controller.signal });
      const [ownDir] = readdirSync(runtimeDir);
      // The tool's record, and the spawn helper's (the runtime's helper is a child of this process).
      const read = (file: string) => JSON.parse(readFileSync(join(runtimeDir, ownDir!, file), 'utf8')) as { tool_id: string };
      const written = (file: string) => {
        try {
          return read(file) !== undefined;
        } catch {
          return false; // being written
        }
      };
      const records = await eventually(async () => readdirSync(join(runtimeDir, ownDir!)), (files) => files.length === 2 && files.every(written));
      const helper = spawnHelperPid(process.pid)!;
      started.add(helper);
      const toolFile = records.find((file) => read(file).tool_id === 'echo')!;
      const pid = Number(toolFile);
      started.add(pid);
      expect(read(toolFile)).toMatchObject({ pid, pgid: pid, start_time: startTimeOf(pid), tool_id: 'echo' });
      expect(read(String(helper))).toMatchObject({ pid: helper, pgid: helper, start_time: startTimeOf(helper), tool_id: 'spawn-helper' });
      // The engine's user's only: directories 0700, records 0600.
      const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8);
      expect([modeOf(runtimeDir), modeOf(join(runtimeDir, ownDir!)), ...records.map((file) => modeOf(join(runtimeDir, ownDir!, file)))]).toEqual(['700', '700', '600', '600']);

      // Another runtime (another engine sharing the directory) starts: this process lives, so nothing is reaped.
      other = new ToolRuntime({ telemetry: t.telemetry, baseEnv: { PATH: process.env.PATH }, runtimeDir });
      expect(processAlive(pid)).toBe(true);
      expect(readdirSync(join(runtimeDir, ownDir!))).toEqual(records);

      controller.abort();
      expect(await pending).toMatchObject({ ok: false, pid, error: { kind: 'canceled' } });
      // Removed off the event loop: soon, not necessarily by the time the call has resolved.
      expect(await eventually(async () => readdirSync(join(runtimeDir, ownDir!)), (files) => files.length === 1)).toEqual([String(helper)]);
    } finally {
      await runtime.shutdown();
      await other?.shutdown();
      await t.shutdown();
    }
    // A runtime that shut down cleanly leaves no directory behind.
    expect(readdirSync(runtimeDir)).toEqual([]);
  }, 30_000);
});

describe('the runtime directory', () => {
  it('comes from configuration: tool-processes next to the SQLite file unless SWITCHYARD_RUNTIME_DIR says otherwise', () => {
    expect(loadConfig({ SWITCHYARD_DB: '/var/lib/switchyard/engine.db' }).runtimeDir).toBe('/var/lib/switchyard/tool-processes');
    expect(loadConfig({ SWITCHYARD_DB: '/var/lib/switchyard/engine.db', SWITCHYARD_RUNTIME_DIR: '/run/switchyard' }).runtimeDir).toBe('/run/switchyard');
    expect(loadConfig({ SWITCHYARD_DB: ':memory:' }).runtimeDir).toBe(resolve('data/tool-processes'));
  });

  it('one the engine cannot use stops the start: exit 2, one fatal line that names it and the variable', async () => {
    const blocker = join(dir, 'not-a-directory');
    writeFileSync(blocker, 'a file where the directory should be');
    const child = spawn(process.execPath, [...ENGINE_ARGS], {
      env: { ...process.env, SWITCHYARD_PORT: '0', SWITCHYARD_DB: join(dir, 'blocked.db'), SWITCHYARD_RUNTIME_DIR: join(blocker, 'tools'), OTEL_SDK_DISABLED: 'true' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk));
    expect(await new Promise<number | null>((resolve) => child.once('close', resolve))).toBe(2);
    const lines = out.trim().split('\n').map((line) => JSON.parse(line) as { level: string; msg: string });
    expect(lines.filter((l) => l.level === 'fatal')).toEqual([expect.objectContaining({ msg: expect.stringContaining(`the tool process directory ${join(blocker, 'tools')} cannot be used`) })]);
    expect(lines.at(-1)!.msg).toMatch(/point SWITCHYARD_RUNTIME_DIR at a directory the engine may write$/);
    expect(lines.some((l) => l.msg === 'switchyard engine ready')).toBe(false);
  }, 30_000);
});
