/**
 * Benchmark 6: sustained throughput. One real engine process, telemetry on (OTLP to the Collector),
 * embedded store, driven by a closed-loop load generator on loopback at fixed concurrency with
 * quick_answer sync requests, bounded by time and by count. Reports successful executions per second,
 * request latency percentiles, the engine's CPU per execution, and what reached the Collector's sink.
 */
import { closedLoop, createAgent } from './lib/http.ts';
import { startEngine } from './lib/processes.ts';
import { latencySummary, round, type LatencySummary } from './lib/stats.ts';
import { WORKLOADS } from './overhead.ts';

export interface ThroughputOptions {
  readonly otlpEndpoint: string;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly concurrency: number;
  readonly maxRequests: number;
  readonly log: (line: string) => void;
}

export interface ThroughputResult {
  readonly durationMs: number;
  readonly concurrency: number;
  readonly completed: number;
  readonly perSecond: number;
  readonly latencyMs: LatencySummary;
  readonly failures: number;
  readonly engineCpuUsPerExecution: number;
  /** Engine CPU time over wall time (1.0 = one core busy). */
  readonly engineCpuShare: number;
  readonly byStatus: Record<string, number>;
}

export async function measureThroughput(options: ThroughputOptions): Promise<ThroughputResult> {
  const engine = await startEngine({ telemetry: true, otlpEndpoint: options.otlpEndpoint });
  const workload = WORKLOADS.quick_answer;
  try {
    await closedLoop({ port: engine.port, path: workload.path, body: workload.body, concurrency: options.concurrency, durationMs: options.warmupMs, maxRequests: options.maxRequests });
    let notSuccess = 0;
    const agent = createAgent(options.concurrency);
    const cpuBefore = engine.cpuMs();
    const result = await closedLoop({
      port: engine.port, path: workload.path, body: workload.body, concurrency: options.concurrency,
      durationMs: options.durationMs, maxRequests: options.maxRequests, agent,
      onResponse: (response) => {
        if (response.status !== 200 || !response.body.includes('"status":"success"')) notSuccess++;
      },
    });
    const cpu = engine.cpuMs() - cpuBefore;
    agent.destroy();
    const latencyMs = latencySummary(result.latenciesMs);
    options.log(`  throughput: ${result.perSecond.toFixed(1)}/s over ${(result.elapsedMs / 1000).toFixed(1)} s at concurrency ${options.concurrency}, p50 ${latencyMs.p50.toFixed(1)} ms, p99 ${latencyMs.p99.toFixed(1)} ms`);
    return {
      durationMs: Math.round(result.elapsedMs),
      concurrency: options.concurrency,
      completed: result.completed,
      perSecond: round(result.perSecond, 1),
      latencyMs,
      failures: notSuccess + result.errors,
      engineCpuUsPerExecution: round((cpu * 1000) / Math.max(1, result.ok), 0),
      engineCpuShare: round(cpu / result.elapsedMs, 2),
      byStatus: result.byStatus,
    };
  } finally {
    await engine.stop();
  }
}
