/**
 * The engine process's event loop delay, for the `nodejs.eventloop.delay.*` gauges. The monitor starts
 * at the first collection (so a process whose telemetry is off never runs it) and each read reports the
 * window since the previous one.
 */
import { monitorEventLoopDelay, type ELDHistogram } from 'node:perf_hooks';

const RESOLUTION_MS = 10;
const NS_PER_S = 1e9;

export interface EventLoopDelayReading {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export class EventLoopDelay {
  #histogram: ELDHistogram | undefined;
  #last: EventLoopDelayReading | undefined;

  /**
   * Seconds of delay since the previous read; undefined on the first read (the monitor starts then).
   * Reads closer together than the sampling interval have no new sample and repeat the previous reading.
   */
  read(): EventLoopDelayReading | undefined {
    if (!this.#histogram) {
      this.#histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
      this.#histogram.enable();
      return undefined;
    }
    const histogram = this.#histogram;
    if (histogram.count > 0) {
      this.#last = { p50: histogram.percentile(50) / NS_PER_S, p99: histogram.percentile(99) / NS_PER_S, max: histogram.max / NS_PER_S };
      histogram.reset();
    }
    return this.#last;
  }
}
