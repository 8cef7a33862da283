/**
 * Benchmark 5: startup. Time from spawning `node --import ./src/telemetry/register.ts src/main.ts` (NodeSDK and
 * the curated instrumentations when on) to the first 200 from /readyz, the engine's CPU time by then, and resident memory (VmRSS) at ready and after a short warm load, with
 * telemetry on (OTLP to the Collector) versus off (OTEL_SDK_DISABLED=true). On and off alternate
 * (on, off, off, on, ...); each pair gives one difference.
 */
import { closedLoop } from './lib/http.ts';
import { startEngine } from './lib/processes.ts';
import { median, round, spread, type Spread } from './lib/stats.ts';
import { WORKLOADS } from './overhead.ts';

export interface StartupOptions {
  readonly pairs: number;
  readonly otlpEndpoint: string;
  /** quick_answer requests sent before the warm RSS reading. */
  readonly warmRequests: number;
  readonly log: (line: string) => void;
}

interface Sample {
  readyMs: number;
  /** The engine's CPU time (all threads) from spawn to ready: steadier than wall time on a shared machine. */
  cpuReadyMs: number;
  rssReadyMb: number;
  rssWarmMb: number;
}

export interface StartupResult {
  readonly pairs: number;
  readonly on: { readyMs: number; cpuReadyMs: number; rssReadyMb: number; rssWarmMb: number };
  readonly off: { readyMs: number; cpuReadyMs: number; rssReadyMb: number; rssWarmMb: number };
  /** on - off, per pair. */
  readonly readyDeltaMs: Spread;
  readonly cpuReadyDeltaMs: Spread;
  readonly rssReadyDeltaMb: Spread;
  readonly rssWarmDeltaMb: Spread;
}

const MB = 1024 * 1024;

async function sample(telemetry: boolean, options: StartupOptions): Promise<Sample> {
  const engine = await startEngine({ telemetry, otlpEndpoint: options.otlpEndpoint });
  try {
    const rssReadyMb = engine.rss() / MB;
    const cpuReadyMs = engine.cpuMs();
    const workload = WORKLOADS.quick_answer;
    await closedLoop({ port: engine.port, path: workload.path, body: workload.body, concurrency: 4, durationMs: 30_000, maxRequests: options.warmRequests });
    return { readyMs: engine.readyMs, cpuReadyMs, rssReadyMb, rssWarmMb: engine.rss() / MB };
  } finally {
    await engine.stop();
  }
}

export async function measureStartup(options: StartupOptions): Promise<StartupResult> {
  // One unmeasured start of each: the OS page cache holds node, the sources and node_modules afterwards.
  await sample(true, options);
  await sample(false, options);
  const on: Sample[] = [];
  const off: Sample[] = [];
  for (let i = 0; i < options.pairs; i++) {
    for (const telemetry of i % 2 === 0 ? [true, false] : [false, true]) (telemetry ? on : off).push(await sample(telemetry, options));
    options.log(`  startup pair ${i + 1}/${options.pairs}: on ${on[i]!.readyMs.toFixed(0)} ms (CPU ${on[i]!.cpuReadyMs.toFixed(0)} ms) / ${on[i]!.rssReadyMb.toFixed(1)} MB, `
      + `off ${off[i]!.readyMs.toFixed(0)} ms (CPU ${off[i]!.cpuReadyMs.toFixed(0)} ms) / ${off[i]!.rssReadyMb.toFixed(1)} MB`);
  }
  const summary = (samples: Sample[]) => ({
    readyMs: round(median(samples.map((s) => s.readyMs)), 1),
    cpuReadyMs: round(median(samples.map((s) => s.cpuReadyMs)), 1),
    rssReadyMb: round(median(samples.map((s) => s.rssReadyMb)), 1),
    rssWarmMb: round(median(samples.map((s) => s.rssWarmMb)), 1),
  });
  return {
    pairs: options.pairs,
    on: summary(on),
    off: summary(off),
    readyDeltaMs: spread(on.map((s, i) => s.readyMs - off[i]!.readyMs)),
    cpuReadyDeltaMs: spread(on.map((s, i) => s.cpuReadyMs - off[i]!.cpuReadyMs)),
    rssReadyDeltaMb: spread(on.map((s, i) => s.rssReadyMb - off[i]!.rssReadyMb)),
    rssWarmDeltaMb: spread(on.map((s, i) => s.rssWarmMb - off[i]!.rssWarmMb)),
  };
}
