/**
 * Benchmark 7: how long starting one tool call blocks the engine's event loop, as the engine grows, for each
 * `ToolProcesses`: `local` (the engine spawns: libuv forks the engine, copying its page tables, on the event
 * loop) and `helper` (the spawn helper process forks; the engine writes a frame and reads one back).
 *
 *   node bench/spawn-cost.ts [--calls=30] [--sizes=100,300,500] [--rounds=2]
 *
 * Each (size, kind) runs in a fresh Node process that makes the ToolProcesses (records in a temporary
 * directory, as the engine keeps them), starts it and runs 3 unmeasured calls, then touches ballast until its
 * RSS reaches the size, then runs `calls` calls of examples/tools/echo.ts one after the other. For each call:
 *   - `run()`: the synchronous part of `processes.run(spec)` (for `local`, the spawn itself: the fork of this
 *     process and libuv's wait for the child's exec);
 *   - block: the longest synchronous block of the call on the event loop: `run()`, or for `helper` the handling
 *     of one of its frames from the helper (`started`: the record written; `done`), timed in place by wrapping
 *     FrameReader.push. This is the stall the call causes;
 *   - turn: the longest event-loop turn from just before `run()` until the engine has learnt the tool's pid and
 *     one more turn, as a setImmediate chain sees it: it also counts the time the scheduler gave other processes,
 *     so on a loaded machine it shows preemption as much as the call (a cross-check, not the measure).
 * For `helper`, `start()` (the one fork of the engine, at start and at each restart of the helper) is timed
 * once, after the ballast. Kinds alternate within a size (ABBA over rounds). Medians of the calls, p90 too.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { HelperToolProcesses } from '../src/engine/runtime/helper-processes.ts';
import { LocalToolProcesses, type LocalToolProcessesOptions, type ProcessSpec, type ToolProcesses } from '../src/engine/runtime/processes.ts';
import { FrameReader } from '../src/engine/runtime/spawn-protocol.ts';
import { resolveBunPath } from '../src/engine/runtime/tool-runtime.ts';
import { REPO } from './lib/processes.ts';
import { median, percentile, round } from './lib/stats.ts';

export const SPAWN_KINDS = ['local', 'helper'] as const;
type Kind = (typeof SPAWN_KINDS)[number];

/** What one child process measured. */
export interface SpawnCostSample {
  readonly kind: Kind;
  readonly targetMiB: number;
  readonly rssMiB: number;
  readonly runMs: { readonly p50: number; readonly p90: number };
  /** The longest synchronous block of the call on the event loop: run(), or (helper) handling a frame. */
  readonly blockMs: { readonly p50: number; readonly p90: number; readonly max: number };
  /** The longest event-loop turn while the call starts, as a setImmediate chain sees it (preemption included). */
  readonly turnMs: { readonly p50: number; readonly p90: number };
  /** helper: the synchronous part of starting the helper (a fork of the engine at this RSS), once. */
  readonly helperStartMs: number | null;
  readonly failures: number;
}

export interface SpawnCostRow {
  readonly targetMiB: number;
  readonly local: SpawnCostSample;
  readonly helper: SpawnCostSample;
  /** helper block p50 / local block p50. */
  readonly blockRatio: number;
}

export interface SpawnCostOptions {
  readonly sizes: readonly number[];
  readonly calls: number;
  readonly rounds: number;
  readonly log: (line: string) => void;
}

/** Touched memory that makes the process as large as an engine with a big heap (kept for the process's life). */
const ballast: Buffer[] = [];

const SPEC = (n: number): ProcessSpec => ({
  script: join(REPO, 'examples', 'tools', 'echo.ts'), env: { PATH: process.env.PATH ?? '' }, timeoutMs: 10_000, label: 'echo',
  stdin: JSON.stringify({ tool_id: 'echo', execution_id: `bench-${n}`, input: { n }, config: {}, timeout_ms: 10_000 }),
});

/** The longest FrameReader.push since the last reset: the engine's handling of the helper's frames, timed in place. */
let longestFrameMs = 0;

/** Wraps FrameReader.push (in the measuring child only). */
function timeFrames(): void {
  const push = FrameReader.prototype.push;
  FrameReader.prototype.push = function timedPush(this: FrameReader, chunk: Buffer): void {
    const began = performance.now();
    try {
      push.call(this, chunk);
    } finally {
      longestFrameMs = Math.max(longestFrameMs, performance.now() - began);
    }
  };
}

async function measureCall(processes: ToolProcesses, n: number): Promise<{ runMs: number; blockMs: number; turnMs: number; ok: boolean }> {
  let maxGap = 0;
  let spinning = true;
  let last = 0;
  const spin = () => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    if (spinning) setImmediate(spin);
  };
  let heard!: () => void;
  const started = new Promise<void>((resolve) => (heard = resolve));
  longestFrameMs = 0;
  const began = performance.now();
  const done = processes.run({ ...SPEC(n), onStarted: () => heard() });
  const runMs = performance.now() - began;
  last = began;
  setImmediate(spin);
  await Promise.race([started, done]);
  await new Promise((resolve) => setImmediate(resolve));
  spinning = false;
  const run = await done;
  return { runMs, blockMs: Math.max(runMs, longestFrameMs), turnMs: maxGap, ok: run.exitCode === 0 && run.stdout.includes('"result"') };
}

/** One (kind, size) in this process: the child side. */
async function child(kind: Kind, targetMiB: number, calls: number): Promise<SpawnCostSample> {
  timeFrames();
  const recordsDir = mkdtempSync(join(tmpdir(), 'switchyard-spawn-cost-'));
  const options: LocalToolProcessesOptions = { bunPath: resolveBunPath(), outputLimit: 1 << 20, stderrLimit: 1 << 16, killGraceMs: 500, closeGraceMs: 500, recordsDir };
  const processes: ToolProcesses = kind === 'local' ? new LocalToolProcesses(options) : new HelperToolProcesses(options);
  // Warm: modules, the helper (started, then stopped, so that `start()` below is timed at the target RSS).
  for (let i = 0; i < 3; i++) await processes.run(SPEC(-1));
  if (kind === 'helper') await processes.shutdown();
  while (process.memoryUsage().rss / 2 ** 20 < targetMiB) ballast.push(Buffer.alloc(1 << 20, 1));
  let helperStartMs: number | null = null;
  if (kind === 'helper') {
    const began = performance.now();
    processes.start();
    helperStartMs = performance.now() - began;
    await processes.run(SPEC(-2));
  }
  const run: number[] = [];
  const block: number[] = [];
  const turn: number[] = [];
  let failures = 0;
  for (let i = 0; i < calls; i++) {
    const m = await measureCall(processes, i);
    run.push(m.runMs);
    block.push(m.blockMs);
    turn.push(m.turnMs);
    if (!m.ok) failures++;
  }
  const rssMiB = process.memoryUsage().rss / 2 ** 20;
  await processes.shutdown();
  rmSync(recordsDir, { recursive: true, force: true });
  return {
    kind, targetMiB, rssMiB: round(rssMiB, 0), helperStartMs: helperStartMs === null ? null : round(helperStartMs, 3), failures,
    runMs: { p50: round(median(run), 3), p90: round(percentile(run, 90), 3) },
    blockMs: { p50: round(median(block), 3), p90: round(percentile(block, 90), 3), max: round(Math.max(...block), 3) },
    turnMs: { p50: round(median(turn), 3), p90: round(percentile(turn, 90), 3) },
  };
}

function inChild(kind: Kind, targetMiB: number, calls: number): SpawnCostSample {
  const run = spawnSync(process.execPath, [import.meta.filename, `--child=${kind}`, `--size=${targetMiB}`, `--calls=${calls}`], { encoding: 'utf8', cwd: REPO });
  if (run.status !== 0) throw new Error(`spawn-cost child (${kind}, ${targetMiB} MiB) failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as SpawnCostSample;
}

/** Medians over rounds of each child's medians. */
function combine(samples: SpawnCostSample[]): SpawnCostSample {
  const pick = (f: (s: SpawnCostSample) => number) => round(median(samples.map(f)), 3);
  const first = samples[0]!;
  return {
    kind: first.kind, targetMiB: first.targetMiB, rssMiB: pick((s) => s.rssMiB), failures: samples.reduce((sum, s) => sum + s.failures, 0),
    helperStartMs: first.helperStartMs === null ? null : pick((s) => s.helperStartMs!),
    runMs: { p50: pick((s) => s.runMs.p50), p90: pick((s) => s.runMs.p90) },
    blockMs: { p50: pick((s) => s.blockMs.p50), p90: pick((s) => s.blockMs.p90), max: round(Math.max(...samples.map((s) => s.blockMs.max)), 3) },
    turnMs: { p50: pick((s) => s.turnMs.p50), p90: pick((s) => s.turnMs.p90) },
  };
}

export async function measureSpawnCost(options: SpawnCostOptions): Promise<SpawnCostRow[]> {
  const rows: SpawnCostRow[] = [];
  for (const size of options.sizes) {
    const samples: Record<Kind, SpawnCostSample[]> = { local: [], helper: [] };
    for (let round = 0; round < options.rounds; round++) {
      const order: Kind[] = round % 2 === 0 ? ['local', 'helper'] : ['helper', 'local'];
      for (const kind of order) samples[kind].push(inChild(kind, size, options.calls));
    }
    const local = combine(samples.local);
    const helper = combine(samples.helper);
    rows.push({
      targetMiB: size, local, helper, blockRatio: round(helper.blockMs.p50 / local.blockMs.p50, 4),
    });
    options.log(`  spawn cost at ${size} MiB: local blocks ${local.blockMs.p50.toFixed(2)} ms (RSS ${local.rssMiB}), `
      + `helper ${helper.blockMs.p50.toFixed(3)} ms (RSS ${helper.rssMiB}), helper start ${helper.helperStartMs?.toFixed(2)} ms once`);
  }
  return rows;
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({
    options: {
      calls: { type: 'string', default: '30' }, sizes: { type: 'string', default: '100,300,500' }, rounds: { type: 'string', default: '2' },
      child: { type: 'string' }, size: { type: 'string' },
    },
  });
  const calls = Number(values.calls);
  if (values.child !== undefined) {
    process.stdout.write(JSON.stringify(await child(values.child as Kind, Number(values.size), calls)));
  } else {
    const rows = await measureSpawnCost({ sizes: values.sizes!.split(',').map(Number), calls, rounds: Number(values.rounds), log: (l) => process.stderr.write(`${l}\n`) });
    console.log('size  RSS MiB  kind    run() p50  block p50 (p90, max)     turn p50 (p90)    helper start (once)');
    for (const r of rows) {
      for (const x of [r.local, r.helper]) {
        console.log(`${String(r.targetMiB).padStart(4)}  ${String(x.rssMiB).padStart(7)}  ${x.kind.padEnd(6)}  ${x.runMs.p50.toFixed(3).padStart(9)}  `
          + `${x.blockMs.p50.toFixed(3)} (${x.blockMs.p90.toFixed(3)}, ${x.blockMs.max.toFixed(3)})`.padEnd(25) + `${x.turnMs.p50.toFixed(3)} (${x.turnMs.p90.toFixed(3)})`.padEnd(18)
          + (x.helperStartMs === null ? '' : `${x.helperStartMs.toFixed(2)} ms`));
      }
      console.log(`${String(r.targetMiB).padStart(4)}  block p50 helper/local: ${r.blockRatio.toFixed(4)}`);
    }
  }
}
