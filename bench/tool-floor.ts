/**
 * Benchmark 3: the tool call floor. ToolRuntime.execute of examples/tools/echo.ts (the production path:
 * runtime.execute_tool span and metrics through the recorder over a real SDK with no-op exporters,
 * process group, the parent-death guard preloaded into bun, the process record written and removed, env
 * allowlist, output caps, classification) versus a bare `bun echo.ts` spawn with the
 * same stdin request and the same environment, reading stdout to the end and parsing it. Calls alternate
 * (runtime, bare, bare, runtime, ...); each pair gives one ratio of wall times.
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
  readonly runtimeMs: LatencySummary;
  readonly bareMs: LatencySummary;
  /** Ratio of the medians of the two series. */
  readonly ratioOfMedians: number;
  /** Per pair ratios (runtime / bare). */
  readonly ratio: Spread;
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
  const runtime = new ToolRuntime({ telemetry, bunPath: resolveBunPath(), runtimeDir });
  const bun = runtime.bunPath;
  runtime.bunVersion(); // cached once at the first call in the engine too
  // The same environment the runtime gives the tool (PATH, HOME, LANG, TZ; echo allowlists nothing).
  const env: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'LANG', 'TZ']) if (process.env[name] !== undefined) env[name] = process.env[name]!;
  let failures = 0;
  const viaRuntime = async (n: number) => {
    const began = performance.now();
    const result = await runtime.execute({ tool: ECHO, executionId: `bench-${n}`, input: INPUT });
    if (!result.ok) failures++;
    return performance.now() - began;
  };
  const viaBare = async (n: number) => {
    const request = JSON.stringify({ tool_id: ECHO.id, execution_id: `bench-${n}`, input: INPUT, config: {}, timeout_ms: ECHO.timeoutMs });
    const result = await bareSpawn(bun, request, env);
    if (!result.ok) failures++;
    return result.ms;
  };
  for (let i = 0; i < options.warmup; i++) {
    await viaRuntime(i);
    await viaBare(i);
  }
  failures = 0;
  const runtimeMs: number[] = [];
  const bareMs: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < options.pairs; i++) {
    let r: number;
    let b: number;
    if (i % 2 === 0) {
      r = await viaRuntime(i);
      b = await viaBare(i);
    } else {
      b = await viaBare(i);
      r = await viaRuntime(i);
    }
    runtimeMs.push(r);
    bareMs.push(b);
    ratios.push(r / b);
    if ((i + 1) % Math.max(1, Math.floor(options.pairs / 4)) === 0) {
      options.log(`  tool floor ${i + 1}/${options.pairs}: runtime median ${median(runtimeMs).toFixed(2)} ms, bare ${median(bareMs).toFixed(2)} ms`);
    }
  }
  await runtime.shutdown();
  await sdk.shutdown();
  rmSync(runtimeDir, { recursive: true, force: true });
  return {
    pairs: options.pairs,
    runtimeMs: latencySummary(runtimeMs),
    bareMs: latencySummary(bareMs),
    ratioOfMedians: round(median(runtimeMs) / median(bareMs), 4),
    ratio: spread(ratios),
    failures,
  };
}
