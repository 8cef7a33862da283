/**
 * Preloaded into a benchmark engine (`node --import ./bench/lib/loop-delay-probe.ts ... src/main.ts`) by
 * bench/loop-delay.ts: the engine's event-loop delay, read on demand, and optional ballast.
 *
 * - BENCH_LOOP_DELAY_FILE: `monitorEventLoopDelay({ resolution: 1 })` runs from the start; each SIGUSR2 writes
 *   {seq, p50, p90, p99, max, mean, count} (ms) of what it saw since the previous SIGUSR2 to the file, then
 *   resets. The values are Node's: intervals of a 1 ms timer, so an idle loop reads about 1.1 ms.
 * - BENCH_BALLAST_MIB: that many MiB of touched memory, kept for the process's life: an engine with a large
 *   heap, as far as fork() is concerned (page tables to copy).
 */
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const ballast: Buffer[] = [];
for (let i = 0; i < Number(process.env.BENCH_BALLAST_MIB ?? 0); i++) ballast.push(Buffer.alloc(1 << 20, 1));
(globalThis as { benchBallast?: Buffer[] }).benchBallast = ballast;

const file = process.env.BENCH_LOOP_DELAY_FILE;
if (file) {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  let seq = 0;
  const ms = (ns: number) => Math.round(ns / 1e3) / 1e3;
  process.on('SIGUSR2', () => {
    writeFileSync(file, JSON.stringify({
      seq: ++seq, p50: ms(histogram.percentile(50)), p90: ms(histogram.percentile(90)), p99: ms(histogram.percentile(99)),
      max: ms(histogram.max), mean: ms(histogram.mean), count: histogram.count,
    }));
    histogram.reset();
  });
}
