/**
 * Benchmark 8: the engine's event-loop delay under support_triage load (two Bun tools per run), with tools
 * started by the engine itself (`SWITCHYARD_TOOL_PROCESSES=local`: a fork of the engine per call) and by the
 * spawn helper (`helper`, the default), side by side.
 *
 *   node bench/loop-delay.ts [--rounds=4] [--round-seconds=5] [--ballast=0,300]
 *
 * Two real engine processes (what `npm start` runs, telemetry off so that only the spawn path differs, each with
 * its own SQLite store) with bench/lib/loop-delay-probe.ts preloaded: `monitorEventLoopDelay` at 1 ms resolution,
 * read and reset by SIGUSR2 around each round. For each ballast (MiB of touched memory added to each engine, as
 * a large heap would be), closed-loop sync support_triage requests at concurrency 4, rounds alternating (ABBA)
 * after a warm-up of each. Per round: the delay p50/p99/max, executions per second, the engine's RSS.
 */
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { closedLoop, createAgent } from './lib/http.ts';
import { startEngine, type EngineProcess } from './lib/processes.ts';
import { median, round, spread, type Spread } from './lib/stats.ts';
import { WORKLOADS } from './overhead.ts';

const KINDS = ['local', 'helper'] as const;
type Kind = (typeof KINDS)[number];

interface Delay {
  readonly seq: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
  readonly count: number;
}

export interface LoopDelayRound {
  readonly delay: Delay;
  readonly perSecond: number;
  readonly rssMiB: number;
  readonly notSuccess: number;
}

export interface LoopDelaySide {
  readonly p99Ms: number;
  readonly p50Ms: number;
  readonly maxMs: number;
  readonly perSecond: number;
  readonly rssMiB: number;
}

export interface LoopDelayResult {
  readonly ballastMiB: number;
  readonly local: LoopDelaySide;
  readonly helper: LoopDelaySide;
  /** helper p99 / local p99, per round pair. */
  readonly p99Ratio: Spread;
  readonly rounds: Array<Record<Kind, LoopDelayRound>>;
  readonly failures: number;
}

export interface LoopDelayOptions {
  readonly ballastMiB: number;
  readonly rounds: number;
  readonly roundMs: number;
  readonly warmupMs: number;
  readonly log: (line: string) => void;
}

const PROBE = './bench/lib/loop-delay-probe.ts';

interface ProbedEngine {
  readonly engine: EngineProcess;
  readonly file: string;
}

async function readDelay(probed: ProbedEngine, after: number): Promise<Delay> {
  process.kill(probed.engine.pid, 'SIGUSR2');
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const delay = JSON.parse(readFileSync(probed.file, 'utf8')) as Delay;
      if (delay.seq > after) return delay;
    } catch {
      // not written yet, or being written
    }
    if (Date.now() > deadline) throw new Error('the engine did not answer the loop delay probe');
    await sleep(10);
  }
}

async function driveRound(probed: ProbedEngine, durationMs: number, seq: number): Promise<LoopDelayRound & { seq: number }> {
  const workload = WORKLOADS.support_triage;
  const reset = await readDelay(probed, seq);
  const agent = createAgent(workload.concurrency);
  let notSuccess = 0;
  const result = await closedLoop({
    port: probed.engine.port, path: workload.path, body: workload.body, concurrency: workload.concurrency, durationMs, maxRequests: Math.ceil(durationMs * 5), agent,
    onResponse: (response) => {
      if (response.status !== 200 || !response.body.includes('"status":"success"')) notSuccess++;
    },
  });
  agent.destroy();
  const delay = await readDelay(probed, reset.seq);
  return { delay, perSecond: round(result.perSecond, 1), rssMiB: round(probed.engine.rss() / 2 ** 20, 0), notSuccess: notSuccess + result.errors, seq: delay.seq };
}

export async function measureLoopDelay(options: LoopDelayOptions): Promise<LoopDelayResult> {
  const engines = {} as Record<Kind, ProbedEngine>;
  const seqs: Record<Kind, number> = { local: 0, helper: 0 };
  try {
    for (const kind of KINDS) {
      const file = join(tmpdir(), `switchyard-loop-delay-${process.pid}-${kind}.json`);
      rmSync(file, { force: true });
      const engine = await startEngine({
        telemetry: false, nodeArgs: ['--import', PROBE],
        env: { SWITCHYARD_TOOL_PROCESSES: kind, BENCH_LOOP_DELAY_FILE: file, BENCH_BALLAST_MIB: String(options.ballastMiB) },
      });
      engines[kind] = { engine, file };
    }
    for (const kind of KINDS) seqs[kind] = (await driveRound(engines[kind], options.warmupMs, seqs[kind])).seq;
    const rounds: LoopDelayResult['rounds'] = [];
    for (let i = 0; i < options.rounds; i++) {
      const order: Kind[] = i % 2 === 0 ? ['local', 'helper'] : ['helper', 'local'];
      const pair = {} as Record<Kind, LoopDelayRound>;
      for (const kind of order) {
        const { seq, ...measured } = await driveRound(engines[kind], options.roundMs, seqs[kind]);
        seqs[kind] = seq;
        pair[kind] = measured;
      }
      rounds.push(pair);
      options.log(`  loop delay (ballast ${options.ballastMiB} MiB) round ${i + 1}/${options.rounds}: `
        + `local p99 ${pair.local.delay.p99.toFixed(2)} ms (${pair.local.perSecond}/s, ${pair.local.rssMiB} MiB), `
        + `helper p99 ${pair.helper.delay.p99.toFixed(2)} ms (${pair.helper.perSecond}/s, ${pair.helper.rssMiB} MiB)`);
    }
    const side = (kind: Kind): LoopDelaySide => ({
      p99Ms: round(median(rounds.map((r) => r[kind].delay.p99)), 3),
      p50Ms: round(median(rounds.map((r) => r[kind].delay.p50)), 3),
      maxMs: round(Math.max(...rounds.map((r) => r[kind].delay.max)), 3),
      perSecond: round(median(rounds.map((r) => r[kind].perSecond)), 1),
      rssMiB: round(median(rounds.map((r) => r[kind].rssMiB)), 0),
    });
    return {
      ballastMiB: options.ballastMiB, local: side('local'), helper: side('helper'),
      p99Ratio: spread(rounds.map((r) => r.helper.delay.p99 / r.local.delay.p99)), rounds,
      failures: rounds.reduce((sum, r) => sum + r.local.notSuccess + r.helper.notSuccess, 0),
    };
  } finally {
    await Promise.all(Object.values(engines).map(async ({ engine, file }) => {
      await engine.stop();
      rmSync(file, { force: true });
    }));
  }
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({
    options: { rounds: { type: 'string', default: '4' }, 'round-seconds': { type: 'string', default: '5' }, ballast: { type: 'string', default: '0,300' } },
  });
  for (const ballastMiB of values.ballast!.split(',').map(Number)) {
    const r = await measureLoopDelay({
      ballastMiB, rounds: Number(values.rounds), roundMs: Number(values['round-seconds']) * 1000, warmupMs: 3_000, log: (l) => process.stderr.write(`${l}\n`),
    });
    for (const kind of KINDS) {
      const s = r[kind];
      console.log(`ballast ${ballastMiB} MiB, ${kind.padEnd(6)}: loop delay p50 ${s.p50Ms.toFixed(2)} ms, p99 ${s.p99Ms.toFixed(2)} ms, max ${s.maxMs.toFixed(1)} ms; ${s.perSecond}/s; RSS ${s.rssMiB} MiB`);
    }
    console.log(`ballast ${ballastMiB} MiB: p99 helper/local median ${r.p99Ratio.median.toFixed(3)} (range ${r.p99Ratio.min.toFixed(3)}..${r.p99Ratio.max.toFixed(3)}), failures ${r.failures}`);
  }
}
