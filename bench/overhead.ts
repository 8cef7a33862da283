/**
 * Benchmark 1: telemetry overhead end to end. Two real engine processes side by side, one exporting to
 * the real Collector, one with OTEL_SDK_DISABLED=true, driven in alternating rounds (ABBA order) by
 * sync HTTP requests at fixed concurrency. Each pair of rounds gives one on/off ratio of executions per
 * second; the result is the median ratio and its spread. The engine CPU time per execution (from
 * /proc) is reported too: it is steadier than throughput on a shared machine.
 */
import { closedLoop, createAgent } from './lib/http.ts';
import { startEngine, type EngineProcess } from './lib/processes.ts';
import { median, round, spread, type Spread } from './lib/stats.ts';

export interface Workload {
  readonly name: string;
  readonly path: string;
  readonly body: (n: number) => string;
  readonly concurrency: number;
}

const TICKETS = [
  { email: 'ada@analytical.example', subject: 'Refund for a double charge', body: 'I was charged twice for my invoice, please refund' },
  { email: 'grace@cobol.example', subject: 'Export fails', body: 'The CSV export fails with an error 500 since Monday' },
  { email: 'alan@bletchley.example', subject: 'Locked out', body: 'My 2FA device is lost and I am locked out of my login' },
];
const QUESTIONS = ['How much does the pro plan cost?', 'I forgot my password', 'Do you have an API?'];
const TICKET_BODIES = TICKETS.map((input) => JSON.stringify({ input }));
const QUESTION_BODIES = QUESTIONS.map((question) => JSON.stringify({ input: { question } }));

export const WORKLOADS = {
  support_triage: {
    name: 'support_triage', path: '/api/v1/workflows/support_triage/executions/sync',
    body: (n: number) => TICKET_BODIES[n % TICKET_BODIES.length]!, concurrency: 4,
  },
  quick_answer: {
    name: 'quick_answer', path: '/api/v1/workflows/quick_answer/executions/sync',
    body: (n: number) => QUESTION_BODIES[n % QUESTION_BODIES.length]!, concurrency: 8,
  },
} as const satisfies Record<string, Workload>;

export interface OverheadOptions {
  readonly workload: Workload;
  readonly otlpEndpoint: string;
  readonly rounds: number;
  readonly roundMs: number;
  readonly warmupMs: number;
  /** Extra environment of the telemetry-on engine (a sampler, say). */
  readonly onEnv?: Record<string, string>;
  readonly log: (line: string) => void;
}

export interface RoundMeasure {
  readonly perSecond: number;
  readonly cpuUsPerExecution: number;
  readonly ok: number;
  readonly notSuccess: number;
  readonly p99Ms: number;
}

export interface OverheadResult {
  readonly workload: string;
  readonly concurrency: number;
  readonly roundMs: number;
  readonly ratio: Spread;
  readonly cpuRatio: Spread;
  readonly on: { perSecond: number; cpuUsPerExecution: number };
  readonly off: { perSecond: number; cpuUsPerExecution: number };
  readonly rounds: Array<{ on: RoundMeasure; off: RoundMeasure }>;
  readonly failures: number;
}

async function drive(engine: EngineProcess, workload: Workload, durationMs: number): Promise<RoundMeasure> {
  const agent = createAgent(workload.concurrency);
  let notSuccess = 0;
  const cpuBefore = engine.cpuMs();
  const result = await closedLoop({
    port: engine.port, path: workload.path, body: workload.body, concurrency: workload.concurrency, durationMs,
    maxRequests: Math.ceil(durationMs * 5), agent,
    onResponse: (response) => {
      if (response.status !== 200 || !response.body.includes('"status":"success"')) notSuccess++;
    },
  });
  const cpu = engine.cpuMs() - cpuBefore;
  agent.destroy();
  const latencies = [...result.latenciesMs].sort((a, b) => a - b);
  return {
    perSecond: result.perSecond,
    cpuUsPerExecution: result.ok > 0 ? (cpu * 1000) / result.ok : Number.NaN,
    ok: result.ok,
    notSuccess: notSuccess + result.errors,
    p99Ms: latencies[Math.max(0, Math.ceil(latencies.length * 0.99) - 1)] ?? Number.NaN,
  };
}

export async function measureOverhead(options: OverheadOptions): Promise<OverheadResult> {
  const { workload, log } = options;
  const [on, off] = await Promise.all([
    startEngine({ telemetry: true, otlpEndpoint: options.otlpEndpoint, env: options.onEnv }),
    startEngine({ telemetry: false }),
  ]);
  try {
    for (const engine of [on, off]) await drive(engine, workload, options.warmupMs);
    const rounds: OverheadResult['rounds'] = [];
    for (let i = 0; i < options.rounds; i++) {
      // ABBA: neither side always runs first (or right after the other's load).
      const order = i % 2 === 0 ? [on, off] : [off, on];
      const measured = new Map<EngineProcess, RoundMeasure>();
      for (const engine of order) measured.set(engine, await drive(engine, workload, options.roundMs));
      const pair = { on: measured.get(on)!, off: measured.get(off)! };
      rounds.push(pair);
      log(`  ${workload.name} round ${i + 1}/${options.rounds}: on ${pair.on.perSecond.toFixed(1)}/s (${pair.on.cpuUsPerExecution.toFixed(0)} µs CPU/exec), `
        + `off ${pair.off.perSecond.toFixed(1)}/s (${pair.off.cpuUsPerExecution.toFixed(0)} µs CPU/exec), ratio ${(pair.on.perSecond / pair.off.perSecond).toFixed(3)}`);
    }
    const failures = rounds.reduce((sum, r) => sum + r.on.notSuccess + r.off.notSuccess, 0);
    return {
      workload: workload.name,
      concurrency: workload.concurrency,
      roundMs: options.roundMs,
      ratio: spread(rounds.map((r) => r.on.perSecond / r.off.perSecond)),
      cpuRatio: spread(rounds.map((r) => r.off.cpuUsPerExecution / r.on.cpuUsPerExecution)),
      on: { perSecond: round(median(rounds.map((r) => r.on.perSecond)), 1), cpuUsPerExecution: round(median(rounds.map((r) => r.on.cpuUsPerExecution)), 0) },
      off: { perSecond: round(median(rounds.map((r) => r.off.perSecond)), 1), cpuUsPerExecution: round(median(rounds.map((r) => r.off.cpuUsPerExecution)), 0) },
      rounds,
      failures,
    };
  } finally {
    await Promise.all([on.stop(), off.stop()]);
  }
}
