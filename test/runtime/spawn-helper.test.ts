// The spawn helper (the default ToolProcesses): what happens when it dies or hangs, and its framed link.
// Real helper processes, real Bun tools, real signals (SIGKILL, SIGSTOP); every wait is bounded, nothing is timed.
// The calls below have long tool timeouts: a call that only ended at its timeout would outlast its test.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HelperToolProcesses } from '../../src/engine/runtime/helper-processes.ts';
import { encodeFrame, FrameReader } from '../../src/engine/runtime/spawn-protocol.ts';
import { resolveBunPath, ToolRuntime, type ToolResult } from '../../src/engine/runtime/tool-runtime.ts';
import { createTestTelemetry, type TestTelemetry } from '../support/telemetry.ts';
import { childPids, leftAfterKill, loadExampleTool, processAlive, processGroupMembers, spawnHelperPid, stateOf } from './tools.ts';

let t: TestTelemetry;
let runtime: ToolRuntime;
/** Every process a test found, SIGKILLed at the end whatever happened (SIGKILL also ends a stopped one). */
const found = new Set<number>();
const dir = mkdtempSync(join(tmpdir(), 'switchyard-helper-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeEach(() => {
  t = createTestTelemetry();
});
afterEach(async () => {
  for (const pid of found) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  found.clear();
  await runtime?.shutdown();
  await t.shutdown();
});

async function waitFor<T>(read: () => T, ok: (value: T) => boolean, withinMs = 15_000): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const value = read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met in time; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The pids of the tools the runtime has recorded in `runtimeDir`: those whose start the engine has heard of. */
function recordedTools(runtimeDir: string): number[] {
  const toolId = (path: string) => {
    try {
      return (JSON.parse(readFileSync(path, 'utf8')) as { tool_id: string }).tool_id;
    } catch {
      return undefined; // being written
    }
  };
  return readdirSync(runtimeDir).flatMap((engineDir) => readdirSync(join(runtimeDir, engineDir))
    .filter((file) => ![undefined, 'spawn-helper'].includes(toolId(join(runtimeDir, engineDir, file))))
    .map(Number));
}

function failed(result: ToolResult) {
  if (result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result.result)}`);
  return result.error;
}

describe('the spawn helper dies', () => {
  it('SIGKILL of the helper: calls in flight fail at once (TOOL_HELPER_DIED), their tools die, stopped ones too; a new helper starts', async () => {
    const runtimeDir = join(dir, 'killed');
    // Unconfined: spawn_children forks Bun children, which cannot start in the sandbox (README, Tool processes).
    runtime = new ToolRuntime({ telemetry: t.telemetry, killGraceMs: 150, baseEnv: { PATH: process.env.PATH }, toolFaults: true, runtimeDir, sandbox: 'off' });
    const tool = loadExampleTool('echo');
    const calls = [
      runtime.execute({ tool, executionId: 'a', input: { _fault: 'hang' }, timeoutMs: 600_000 }),
      runtime.execute({ tool, executionId: 'b', input: { _fault: 'hang' }, timeoutMs: 600_000 }),
      runtime.execute({ tool, executionId: 'c', input: { _fault: 'spawn_children' }, timeoutMs: 600_000 }),
    ];
    const helper = await waitFor(() => spawnHelperPid(process.pid), (pid) => pid !== undefined);
    found.add(helper!);
    // The tools are the helper's children, each leading its group: 1 + 1 + 3 processes once all have started.
    const groups = await waitFor(() => childPids(helper!).map((pid) => processGroupMembers(pid)),
      (g) => JSON.stringify(g.map((members) => members.length).sort()) === '[1,1,3]');
    const everyone = groups.flat();
    for (const pid of everyone) found.add(pid);
    // Each tool's start has reached the engine (it records them).
    await waitFor(() => recordedTools(runtimeDir).length, (n) => n === 3);
    // A stopped tool cannot run its guard: only the engine's own kill reaches it.
    const stopped = groups.find((members) => members.length === 1)![0]!;
    process.kill(stopped, 'SIGSTOP');
    await waitFor(() => stateOf(stopped), (state) => state === 'T');

    process.kill(helper!, 'SIGKILL');
    const results = await Promise.all(calls);
    for (const result of results) {
      expect(failed(result)).toMatchObject({ kind: 'wait', code: 'TOOL_HELPER_DIED', origin: 'runtime' });
      expect(failed(result).message).toBe(`tool process lost: the tool spawn helper (pid ${helper}) died (killed by SIGKILL) while the tool ran; its process group was killed`);
      expect(everyone).toContain(result.pid);
    }
    expect(runtime.liveProcesses()).toBe(0);
    expect(await leftAfterKill(() => everyone.filter(processAlive), 10_000)).toEqual([]);
    expect(await t.metricPoints('runtime_tool_errors_total')).toEqual([{ attributes: { tool_id: 'echo', error_kind: 'wait' }, value: 3 }]);

    // Restarted at once (it had worked), before any call asks for it; the next call runs there.
    const second = (await waitFor(() => spawnHelperPid(process.pid), (pid) => pid !== undefined && pid !== helper))!;
    found.add(second);
    const next = await runtime.execute({ tool, executionId: 'd', input: { after: true } });
    expect(next.ok && next.result).toEqual({ echo: { after: true } });
    expect(spawnHelperPid(process.pid)).toBe(second);
    // A clean shutdown ends the helper too.
    await runtime.shutdown();
    expect(await leftAfterKill(() => [second].filter(processAlive))).toEqual([]);
  }, 30_000);

  it('a hung helper (SIGSTOP) is killed once a call is overdue: the call fails, never hangs, and its tool dies', async () => {
    const runtimeDir = join(dir, 'hung');
    runtime = new ToolRuntime({
      telemetry: t.telemetry, killGraceMs: 100, closeGraceMs: 100, helperWatchdogMs: 200, baseEnv: { PATH: process.env.PATH }, toolFaults: true, runtimeDir,
    });
    // The helper enforces the 1 s timeout; stopped, it cannot: the engine's watchdog (timeout + grace + 200 ms) acts.
    const pending = runtime.execute({ tool: loadExampleTool('echo'), executionId: 'x', input: { _fault: 'hang' }, timeoutMs: 1_000 });
    const helper = await waitFor(() => spawnHelperPid(process.pid), (pid) => pid !== undefined);
    found.add(helper!);
    const [tool] = await waitFor(() => recordedTools(runtimeDir), (pids) => pids.length === 1);
    found.add(tool!);
    expect(childPids(helper!)).toEqual([tool]);
    process.kill(helper!, 'SIGSTOP');
    const result = await pending;
    expect(failed(result)).toMatchObject({ kind: 'wait', code: 'TOOL_HELPER_DIED' });
    expect(failed(result).message).toContain(`the tool spawn helper (pid ${helper}) stopped answering and was killed while the tool ran`);
    expect(result.pid).toBe(tool);
    expect(await leftAfterKill(() => [helper!, tool!].filter(processAlive))).toEqual([]);
  }, 30_000);

  it('a helper that cannot start fails the call as kind start, naming the helper', async () => {
    const processes = new HelperToolProcesses({
      bunPath: resolveBunPath(), outputLimit: 1000, stderrLimit: 1000, killGraceMs: 100, closeGraceMs: 100, helperRuntime: '/nonexistent/node',
    });
    const run = await processes.run({ script: loadExampleTool('echo').script, env: {}, stdin: '{}', timeoutMs: 1_000, label: 'echo' });
    expect(run.pid).toBeNull();
    expect(run.spawnError?.message).toMatch(/^the tool spawn helper \(pid null\) could not be started \(spawn \/nonexistent\/node ENOENT\) before it reported starting the tool$/);
    expect(processes.live).toBe(0);
    await processes.shutdown();
  });
});

describe('the link to the helper', () => {
  it('a 3 MB answer crosses it byte for byte', async () => {
    runtime = new ToolRuntime({ telemetry: t.telemetry, baseEnv: { PATH: process.env.PATH } });
    const blob = Array.from({ length: 3 * 1024 }, (_, i) => `${i}:${'é€'.repeat(300)}`).join('|');
    const result = await runtime.execute({ tool: loadExampleTool('echo'), executionId: 'x', input: { blob }, timeoutMs: 20_000 });
    expect(result.ok && (result.result as { echo: { blob: string } }).echo.blob === blob).toBe(true);
    expect(result.outputBytes).toBeGreaterThan(3 * 1024 * 1024);
  }, 30_000);

  it('frames come out whole however the bytes are cut', () => {
    const frames = [
      encodeFrame(1, 7, { script: '/x.ts', env: { A: 'é' } }, Buffer.from('stdin bytes')),
      encodeFrame(2, 8, null),
      encodeFrame(5, 0xffff_ffff, { n: 1 }, Buffer.from([0, 255, 1]), Buffer.alloc(70_000, 9)),
    ];
    const bytes = Buffer.concat(frames.flat());
    for (const size of [1, 3, 4, 9, 100, 65_536, bytes.length]) {
      const seen: Array<[number, number, unknown, Buffer]> = [];
      const reader = new FrameReader((type, id, header, body) => seen.push([type, id, header, Buffer.from(body)]));
      for (let at = 0; at < bytes.length; at += size) reader.push(bytes.subarray(at, at + size));
      expect(seen.map(([type, id, header, body]) => [type, id, header, body.length])).toEqual([
        [1, 7, { script: '/x.ts', env: { A: 'é' } }, 11], [2, 8, null, 0], [5, 0xffff_ffff, { n: 1 }, 70_003],
      ]);
      expect(seen[0]![3].toString()).toBe('stdin bytes');
      expect(seen[2]![3].subarray(0, 4)).toEqual(Buffer.from([0, 255, 1, 9]));
    }
    expect(() => new FrameReader(() => {}).push(Buffer.from([1, 0, 0, 0, 0]))).toThrow(/bad frame length/);
  });
});
