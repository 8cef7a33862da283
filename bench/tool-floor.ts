/**
 * Benchmark 3: the tool call floor. ToolRuntime.execute of examples/tools/echo.ts (the production path:
 * runtime.execute_tool span and metrics through the recorder over a real SDK with no-op exporters, the spawn
 * helper started beforehand as the engine does, process group, the parent-death guard preloaded into bun, the
 * process record written and removed, env allowlist, output caps, classification) versus a bare
 * `bun echo.ts` spawn from this process with the same stdin request and the same environment, reading stdout to
 * the end and parsing it; and the same runtime spawning from this process (`processes: 'local'`, the path
 * before the helper). The three rotate (each first, second and third equally often); each round gives one
 * ratio of wall times per runtime.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ToolRuntime, resolveBunPath, type ToolDefinition } from '../src/engine/runtime/tool-runtime.ts';
import { REPO } from './lib/processes.ts';
import { createBenchTelemetry } from './lib/sdk.ts';
import { latencySummary, median, round, spread, type LatencySummary, type Spread } from './lib/stats.ts';

export interface ToolFloorOptions {
  readonly pairs: number;
  readonly warmup: number;
  readonly log: (line: string) => void;
}

export interface ToolFloorResult {
  readonly pairs: number;
  /** The runtime with its default ToolProcesses (the spawn helper). */
  readonly runtimeMs: LatencySummary;
  /** The runtime spawning from this process (SWITCHYARD_TOOL_PROCESSES=local), the path before the helper. */
  readonly localMs: LatencySummary;
  readonly bareMs: LatencySummary;
  /** Ratio of the medians: runtime (helper) / bare. */
  readonly ratioOfMedians: number;
  /** Per round ratios (runtime / bare). */
  readonly ratio: Spread;
  /** The same for the local path: local / bare. */
  readonly localRatioOfMedians: number;
  readonly localRatio: Spread;
  readonly failures: number;
}

const ECHO: ToolDefinition = {
  id: 'echo', description: 'echo', script: join(REPO, 'examples', 'tools', 'echo.ts'), timeoutMs: 5_000, config: {}, env: [], secretInputs: [],
};
const INPUT = { text: 'hello', n: 42 };

function bareSpawn(bun: string, request: string, env: Record<string, string>): Promise<{ ms: number; ok: boolean }> {
  const began = performance.now();
  return new Promise((resolve) => {
    const child = spawn(bun, [ECHO.script], { cwd: dirname(ECHO.script), env, stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.resume();
    child.once('error', () => resolve({ ms: performance.now() - began, ok: false }));
    child.once('close', (code) => {
      let ok = code === 0;
      try {
        ok &&= 'result' in (JSON.parse(Buffer.concat(chunks).toString('utf8')) as object);
      } catch {
        ok = false;
      }
      resolve({ ms: performance.now() - began, ok });
    });
    child.stdin.end(request);
  });
}

export async function measureToolFloor(options: ToolFloorOptions): Promise<ToolFloorResult> {
  const { sdk, telemetry } = createBenchTelemetry();
  const runtimeDir = mkdtempSync(join(tmpdir(), 'switchyard-bench-tools-'));
  const localDir = mkdtempSync(join(tmpdir(), 'switchyard-bench-tools-'));
  const runtime = new ToolRuntime({ telemetry, bunPath: resolveBunPath(), runtimeDir, processes: 'helper' });
  const local = new ToolRuntime({ telemetry, bunPath: resolveBunPath(), runtimeDir: localDir, processes: 'local' });
  runtime.start(); // as the engine does at start
  const bun = runtime.bunPath;
  runtime.bunVersion(); // cached once at the first call in the engine too
  local.bunVersion();
  // The same environment the runtime gives the tool (PATH, HOME, LANG, TZ; echo allowlists nothing).
  const env: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'LANG', 'TZ']) if (process.env[name] !== undefined) env[name] = process.env[name]!;
  let failures = 0;
  const via = (r: ToolRuntime) => async (n: number) => {
    const began = performance.now();
    const result = await r.execute({ tool: ECHO, executionId: `bench-${n}`, input: INPUT });
    if (!result.ok) failures++;
    return performance.now() - began;
  };
  const viaBare = async (n: number) => {
    const request = JSON.stringify({ tool_id: ECHO.id, execution_id: `bench-${n}`, input: INPUT, config: {}, timeout_ms: ECHO.timeoutMs });
    const result = await bareSpawn(bun, request, env);
    if (!result.ok) failures++;
    return result.ms;
  };
  const variants = [via(runtime), via(local), viaBare];
  for (let i = 0; i < options.warmup; i++) for (const variant of variants) await variant(i);
  failures = 0;
  const samples: number[][] = [[], [], []];
  for (let i = 0; i < options.pairs; i++) {
    // Rotating order: each variant runs first, second and third equally often.
    for (let k = 0; k < 3; k++) {
      const v = (i + k) % 3;
      samples[v]!.push(await variants[v]!(i));
    }
    if ((i + 1) % Math.max(1, Math.floor(options.pairs / 4)) === 0) {
      options.log(`  tool floor ${i + 1}/${options.pairs}: runtime (helper) median ${median(samples[0]!).toFixed(2)} ms, local ${median(samples[1]!).toFixed(2)} ms, bare ${median(samples[2]!).toFixed(2)} ms`);
    }
  }
  await runtime.shutdown();
  await local.shutdown();
  await sdk.shutdown();
  rmSync(runtimeDir, { recursive: true, force: true });
  rmSync(localDir, { recursive: true, force: true });
  const [helperMs, localMs, bareMs] = samples as [number[], number[], number[]];
  return {
    pairs: options.pairs,
    runtimeMs: latencySummary(helperMs),
    localMs: latencySummary(localMs),
    bareMs: latencySummary(bareMs),
    ratioOfMedians: round(median(helperMs) / median(bareMs), 4),
    ratio: spread(helperMs.map((ms, i) => ms / bareMs[i]!)),
    localRatioOfMedians: round(median(localMs) / median(bareMs), 4),
    localRatio: spread(localMs.map((ms, i) => ms / bareMs[i]!)),
    failures,
  };
}
