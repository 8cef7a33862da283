/**
 * `npm run bench`: Switchyard's benchmarks, as ratios measured side by side in one run.
 *
 *   node bench/run.ts [--quick] [--only=overhead,micro,tool,wait,startup,throughput,spawn,loop]
 *                     [--throughput-seconds=60] [--throughput-concurrency=16] [--sampler-ratio=0.1]
 *                     [--on-env=OTEL_NODE_EXPERIMENTAL_SDK_METRICS=false,...]
 *                     [--out=bench/results/latest.json]
 *
 * Full mode takes about 11 minutes on a 2-core machine, --quick about 4. Everything runs on loopback: the
 * engine processes, the Collector (pinned binary from scripts/stack-binaries.sh, or OTELCOL_BIN) with
 * bench/otelcol-bench.yaml, and a sink standing in for its backends. Prints a table of results versus
 * targets and writes the whole record (every round) as JSON. Exit code 0 even when a target is missed:
 * benchmarks inform, they do not gate (these machines are noisy); 1 when a benchmark itself failed.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { resolveBunPath } from '../src/engine/runtime/tool-runtime.ts';
import { measureTelemetryMicro } from './micro-telemetry.ts';
import { measureOverhead, WORKLOADS } from './overhead.ts';
import { REPO, startCollector, type Collector } from './lib/processes.ts';
import { round } from './lib/stats.ts';
import { measureStartup } from './startup.ts';
import { measureSyncWait } from './sync-wait.ts';
import { measureThroughput } from './throughput.ts';
import { measureLoopDelay } from './loop-delay.ts';
import { measureSpawnCost } from './spawn-cost.ts';
import { measureToolFloor } from './tool-floor.ts';

const BENCHMARKS = ['overhead', 'micro', 'tool', 'wait', 'startup', 'throughput', 'spawn', 'loop'] as const;
type BenchName = (typeof BENCHMARKS)[number];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'throughput-seconds': { type: 'string' },
    'throughput-concurrency': { type: 'string', default: '16' },
    // Head sampling for the telemetry-on engine of the overhead benchmark (default: every trace, as shipped).
    'sampler-ratio': { type: 'string' },
    // More environment for the telemetry-on engine of the overhead benchmark (KEY=VALUE, comma-separated):
    // to measure what one SDK setting changes, side by side with telemetry off.
    'on-env': { type: 'string' },
    out: { type: 'string', default: join(REPO, 'bench', 'results', 'latest.json') },
  },
});
const quick = values.quick!;
const selected = new Set<BenchName>(values.only ? values.only.split(',').map((s) => s.trim()) as BenchName[] : BENCHMARKS);
for (const name of selected) if (!BENCHMARKS.includes(name)) throw new Error(`unknown benchmark "${name}"; known: ${BENCHMARKS.join(', ')}`);

const MODE = quick
  ? { overhead: { rounds: 4, roundMs: 2_500, warmupMs: 1_500 }, micro: { rounds: 5, runsPerBlock: 1_500 }, tool: { pairs: 40, warmup: 5 },
      wait: { requests: 600, concurrency: 4, pollingRequests: 48, pollingConcurrency: 16 }, startup: { pairs: 2, warmRequests: 200 },
      throughput: { durationMs: 15_000, warmupMs: 3_000 }, spawn: { sizes: [100, 300, 500], calls: 15, rounds: 1 },
      loop: { ballasts: [0], rounds: 2, roundMs: 3_000, warmupMs: 2_000 } }
  : { overhead: { rounds: 6, roundMs: 5_000, warmupMs: 3_000 }, micro: { rounds: 11, runsPerBlock: 3_000 }, tool: { pairs: 150, warmup: 10 },
      wait: { requests: 2_000, concurrency: 4, pollingRequests: 128, pollingConcurrency: 16 }, startup: { pairs: 5, warmRequests: 300 },
      throughput: { durationMs: 60_000, warmupMs: 5_000 }, spawn: { sizes: [100, 300, 500], calls: 30, rounds: 2 },
      loop: { ballasts: [0, 300], rounds: 4, roundMs: 5_000, warmupMs: 3_000 } };
const throughputMs = values['throughput-seconds'] ? Number(values['throughput-seconds']) * 1000 : MODE.throughput.durationMs;
const throughputConcurrency = Number(values['throughput-concurrency']);
const samplerRatio = values['sampler-ratio'];
if (samplerRatio !== undefined && !(Number(samplerRatio) >= 0 && Number(samplerRatio) <= 1)) throw new Error('--sampler-ratio takes a number from 0 to 1');
const extraOnEnv = Object.fromEntries((values['on-env'] ?? '').split(',').filter((pair) => pair.trim() !== '').map((pair) => {
  const at = pair.indexOf('=');
  if (at <= 0) throw new Error(`--on-env takes KEY=VALUE pairs, not "${pair}"`);
  return [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
}));
const sampledOnEnv = samplerRatio === undefined && Object.keys(extraOnEnv).length === 0 ? undefined : {
  ...(samplerRatio === undefined ? {} : { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: samplerRatio }),
  ...extraOnEnv,
};

const log = (line: string) => process.stderr.write(`${line}\n`);
const versionOf = (pkg: string) => {
  try {
    return (JSON.parse(readFileSync(join(REPO, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'missing';
  }
};
const tryRun = (file: string, args: string[]) => {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
};

interface Row {
  readonly benchmark: string;
  readonly measured: string;
  readonly target: string;
  readonly met: boolean | null;
  readonly detail: string;
}
const rows: Row[] = [];
const results: Record<string, unknown> = {};
const errors: Record<string, string> = {};
const fmtSpread = (s: { median: number; min: number; max: number; n: number }, digits = 3) =>
  `median ${s.median.toFixed(digits)}, range ${s.min.toFixed(digits)}..${s.max.toFixed(digits)} (n=${s.n})`;

const startedAt = new Date();
const loadBefore = loadavg();
let collector: Collector | undefined;
const needsCollector = ['overhead', 'startup', 'throughput'].some((b) => selected.has(b as BenchName));

async function step(name: BenchName, work: () => Promise<void>): Promise<void> {
  if (!selected.has(name)) return;
  const began = Date.now();
  log(`== ${name}`);
  try {
    await work();
  } catch (error) {
    errors[name] = error instanceof Error ? (error.stack ?? error.message) : String(error);
    log(`  ${name} FAILED: ${errors[name]}`);
    rows.push({ benchmark: name, measured: 'failed', target: '', met: false, detail: String((error as Error).message ?? error) });
  }
  log(`  (${((Date.now() - began) / 1000).toFixed(0)} s)`);
}

try {
  if (needsCollector) {
    collector = await startCollector();
    log(`collector ${collector.version} at ${collector.otlpEndpoint} (sink ${collector.sink.url})`);
  }

  await step('overhead', async () => {
    const list = [];
    for (const [workload, target] of [[WORKLOADS.support_triage, 0.97], [WORKLOADS.quick_answer, 0.75]] as const) {
      const r = await measureOverhead({ workload, otlpEndpoint: collector!.otlpEndpoint, ...MODE.overhead, onEnv: sampledOnEnv, log });
      list.push(r);
      rows.push({
        benchmark: `overhead ${workload.name} (on/off exec/s)${samplerRatio === undefined ? '' : `, traces sampled at ${samplerRatio}`}${values['on-env'] ? `, on with ${values['on-env']}` : ''}`, measured: r.ratio.median.toFixed(3), target: `>= ${target}`, met: r.ratio.median >= target,
        detail: `${fmtSpread(r.ratio)}; on ${r.on.perSecond}/s vs off ${r.off.perSecond}/s at concurrency ${r.concurrency}; engine CPU/exec on ${r.on.cpuUsPerExecution} µs, off ${r.off.cpuUsPerExecution} µs (off/on ${r.cpuRatio.median.toFixed(3)}); failures ${r.failures}`,
      });
      rows.push({
        benchmark: `engine CPU per ${workload.name} exec, off/on (all threads)`, measured: r.cpuRatio.median.toFixed(3), target: 'informative', met: null,
        detail: `${fmtSpread(r.cpuRatio)}; on ${r.on.cpuUsPerExecution} µs, off ${r.off.cpuUsPerExecution} µs: telemetry adds ${Math.round(r.on.cpuUsPerExecution - r.off.cpuUsPerExecution)} µs per exec`,
      });
    }
    results.overhead = list;
  });

  await step('micro', async () => {
    const r = await measureTelemetryMicro({ ...MODE.micro, log });
    results.micro = r;
    rows.push({
      benchmark: 'telemetry CPU per quick_answer request, main thread (recorder on NodeSDK)', measured: `${r.recorderCostUs.median.toFixed(1)} µs`, target: 'informative', met: null,
      detail: `${fmtSpread(r.recorderCostUs, 1)}; spans per run: recorder ${r.spansPerRun.recorder}, bare ${r.spansPerRun.bare}; ${r.pointsPerRun} points; skeleton alone ${r.cpuUsPerRun.none} µs`,
    });
    rows.push({
      benchmark: 'engine\'s telemetry vs bare NodeSDK, main thread (cost ratio)', measured: `${r.ratio.median.toFixed(3)}x`, target: '<= 1.10x', met: r.ratio.median <= 1.1,
      detail: `${fmtSpread(r.ratio)}; bare NodeSDK ${r.bareCostUs.median.toFixed(1)} µs per run`,
    });
    rows.push({
      benchmark: 'engine\'s telemetry vs bare NodeSDK, whole process (cost ratio)', measured: `${r.process.ratio.median.toFixed(3)}x`, target: '<= 1.10x', met: r.process.ratio.median <= 1.1,
      detail: `${fmtSpread(r.process.ratio)}; recorder ${r.process.recorderCostUs.median.toFixed(1)} µs vs bare ${r.process.bareCostUs.median.toFixed(1)} µs per run (the GC's threads included)`,
    });
  });

  await step('tool', async () => {
    const r = await measureToolFloor({ ...MODE.tool, log });
    results.tool = r;
    rows.push({
      benchmark: 'tool call floor (runtime/bare bun spawn)', measured: `${r.ratioOfMedians.toFixed(3)}x`, target: '<= 1.10x', met: r.ratioOfMedians <= 1.1,
      detail: `runtime (spawn helper) p50 ${r.runtimeMs.p50.toFixed(1)} ms vs bare p50 ${r.bareMs.p50.toFixed(1)} ms (ratio of medians); per-round ${fmtSpread(r.ratio)}; `
        + `local spawn (before the helper) p50 ${r.localMs.p50.toFixed(1)} ms, ${r.localRatioOfMedians.toFixed(3)}x; failures ${r.failures}`,
    });
  });

  await step('wait', async () => {
    const r = await measureSyncWait({ ...MODE.wait, log });
    results.wait = r;
    rows.push({
      benchmark: 'sync wait p99 (completion -> response)', measured: `${r.notified.p99.toFixed(2)} ms`, target: '<= 5 ms', met: r.notified.p99 <= 5,
      detail: `1 in flight: p50 ${r.notified.p50.toFixed(2)} ms (n=${r.notified.n}); ${MODE.wait.concurrency} in flight: p50 ${r.notifiedLoaded.p50.toFixed(2)}, p99 ${r.notifiedLoaded.p99.toFixed(2)} ms; `
        + `200 ms polling wait: p50 ${r.polling.p50.toFixed(1)}, p99 ${r.polling.p99.toFixed(1)} ms (n=${r.polling.n}); failures ${r.failures}`,
    });
  });

  await step('startup', async () => {
    const r = await measureStartup({ ...MODE.startup, otlpEndpoint: collector!.otlpEndpoint, log });
    results.startup = r;
    rows.push({
      benchmark: 'startup: time to ready, on - off', measured: `${r.readyDeltaMs.median >= 0 ? '+' : ''}${r.readyDeltaMs.median.toFixed(0)} ms`, target: '<= +300 ms', met: r.readyDeltaMs.median <= 300,
      detail: `${fmtSpread(r.readyDeltaMs, 0)}; on ${r.on.readyMs} ms, off ${r.off.readyMs} ms`,
    });
    rows.push({
      benchmark: 'startup: CPU time to ready, on - off', measured: `${r.cpuReadyDeltaMs.median >= 0 ? '+' : ''}${r.cpuReadyDeltaMs.median.toFixed(0)} ms`, target: '<= +300 ms', met: r.cpuReadyDeltaMs.median <= 300,
      detail: `${fmtSpread(r.cpuReadyDeltaMs, 0)}; on ${r.on.cpuReadyMs} ms, off ${r.off.cpuReadyMs} ms (engine process, all threads)`,
    });
    rows.push({
      benchmark: 'startup: RSS at ready, on - off', measured: `${r.rssReadyDeltaMb.median >= 0 ? '+' : ''}${r.rssReadyDeltaMb.median.toFixed(1)} MB`, target: '<= +40 MB', met: r.rssReadyDeltaMb.median <= 40,
      detail: `${fmtSpread(r.rssReadyDeltaMb, 1)}; on ${r.on.rssReadyMb} MB, off ${r.off.rssReadyMb} MB; after ${MODE.startup.warmRequests} requests: on ${r.on.rssWarmMb} MB, off ${r.off.rssWarmMb} MB (delta median ${r.rssWarmDeltaMb.median.toFixed(1)} MB)`,
    });
  });

  await step('throughput', async () => {
    const r = await measureThroughput({
      otlpEndpoint: collector!.otlpEndpoint, durationMs: throughputMs, warmupMs: MODE.throughput.warmupMs,
      concurrency: throughputConcurrency, maxRequests: Math.ceil(throughputMs / 1000) * 5_000, log,
    });
    results.throughput = r;
    rows.push({
      benchmark: `throughput quick_answer, telemetry on (${(r.durationMs / 1000).toFixed(0)} s)`, measured: `${r.perSecond.toFixed(0)}/s`, target: '>= 1000/s', met: r.perSecond >= 1000,
      detail: `${r.completed} requests at concurrency ${r.concurrency}; engine CPU ${r.engineCpuUsPerExecution} µs/exec, ${Math.round(r.engineCpuShare * 100)}% of a core; failures ${r.failures}`,
    });
    rows.push({
      benchmark: 'throughput p99 latency', measured: `${r.latencyMs.p99.toFixed(1)} ms`, target: '<= 50 ms', met: r.latencyMs.p99 <= 50,
      detail: `p50 ${r.latencyMs.p50.toFixed(1)} ms, p90 ${r.latencyMs.p90.toFixed(1)} ms, max ${r.latencyMs.max.toFixed(1)} ms`,
    });
  });

  await step('spawn', async () => {
    const list = await measureSpawnCost({ ...MODE.spawn, log });
    results.spawn = list;
    for (const r of list) {
      rows.push({
        benchmark: `starting a tool blocks the event loop, engine at ${r.targetMiB} MiB`, measured: `${r.helper.blockMs.p50.toFixed(3)} ms`, target: '<= 1 ms', met: r.helper.blockMs.p50 <= 1,
        detail: `spawn helper p50 ${r.helper.blockMs.p50.toFixed(3)} ms (p90 ${r.helper.blockMs.p90.toFixed(3)}) vs local spawn p50 ${r.local.blockMs.p50.toFixed(2)} ms `
          + `(p90 ${r.local.blockMs.p90.toFixed(2)}): ${r.blockRatio.toFixed(4)}x; RSS ${r.local.rssMiB}/${r.helper.rssMiB} MiB; helper start (once) ${r.helper.helperStartMs?.toFixed(1)} ms; `
          + `failures ${r.local.failures + r.helper.failures}`,
      });
    }
  });

  await step('loop', async () => {
    const list = [];
    for (const ballastMiB of MODE.loop.ballasts) {
      const r = await measureLoopDelay({ ballastMiB, rounds: MODE.loop.rounds, roundMs: MODE.loop.roundMs, warmupMs: MODE.loop.warmupMs, log });
      list.push(r);
      rows.push({
        benchmark: `event-loop delay p99, support_triage load${ballastMiB ? `, +${ballastMiB} MiB` : ''}`, measured: `${r.helper.p99Ms.toFixed(2)} ms`, target: '<= 5 ms', met: r.helper.p99Ms <= 5,
        detail: `spawn helper p99 ${r.helper.p99Ms.toFixed(2)} ms (RSS ${r.helper.rssMiB} MiB, ${r.helper.perSecond}/s) vs local spawn p99 ${r.local.p99Ms.toFixed(2)} ms `
          + `(RSS ${r.local.rssMiB} MiB, ${r.local.perSecond}/s); helper/local per round ${fmtSpread(r.p99Ratio)}; failures ${r.failures}`,
      });
    }
    results.loop = list;
  });
} finally {
  await collector?.close();
}

const finishedAt = new Date();
const record = {
  date: startedAt.toISOString(),
  durationS: Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000),
  mode: quick ? 'quick' : 'full',
  benchmarks: [...selected],
  samplerRatio: samplerRatio ?? null,
  onEnv: extraOnEnv,
  git: tryRun('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']),
  machine: {
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGiB: round(totalmem() / 1024 ** 3, 1),
    freeMemoryGiB: round(freemem() / 1024 ** 3, 1),
    loadavgBefore: loadBefore.map((l) => round(l, 2)),
    loadavgAfter: loadavg().map((l) => round(l, 2)),
    kernel: tryRun('uname', ['-sr']),
  },
  versions: {
    node: process.version,
    bun: tryRun(resolveBunPath(), ['--version']),
    collector: collector?.version ?? 'not used',
    '@opentelemetry/api': versionOf('@opentelemetry/api'),
    '@opentelemetry/sdk-trace': versionOf('@opentelemetry/sdk-trace'),
    '@opentelemetry/sdk-metrics': versionOf('@opentelemetry/sdk-metrics'),
    '@opentelemetry/sdk-node': versionOf('@opentelemetry/sdk-node'),
    '@opentelemetry/auto-instrumentations-node': versionOf('@opentelemetry/auto-instrumentations-node'),
    '@opentelemetry/exporter-trace-otlp-http': versionOf('@opentelemetry/exporter-trace-otlp-http'),
    '@opentelemetry/exporter-metrics-otlp-http': versionOf('@opentelemetry/exporter-metrics-otlp-http'),
    express: versionOf('express'),
  },
  collectorSink: collector ? { ...collector.sink.stats } : null,
  table: rows,
  results,
  errors,
};
const out = resolve(values.out!);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(record, null, 2)}\n`);

const header = ['benchmark', 'measured', 'target', 'verdict'];
const lines = rows.map((r) => [r.benchmark, r.measured, r.target, r.met === null ? '' : r.met ? 'met' : 'MISSED']);
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
process.stdout.write(`\nSwitchyard benchmarks (${record.mode}, ${record.date}, ${record.machine.nproc} x ${record.machine.cpu}, load ${record.machine.loadavgBefore.join('/')} -> ${record.machine.loadavgAfter.join('/')})\n\n`);
process.stdout.write(`${fmt(header)}\n${fmt(widths.map((w) => '-'.repeat(w)))}\n`);
for (const line of lines) process.stdout.write(`${fmt(line)}\n`);
process.stdout.write('\n');
for (const r of rows) process.stdout.write(`- ${r.benchmark}: ${r.detail}\n`);
process.stdout.write(`\nwritten ${relative(process.cwd(), out) || out} in ${record.durationS} s\n`);
process.exitCode = Object.keys(errors).length > 0 ? 1 : 0;
