/**
 * Benchmark 4: sync wait. How long after a run completes does its sync HTTP response arrive?
 *
 * An in-process engine (real SqliteStore in a temp dir, real Telemetry recorder over an SDK with no-op
 * exporters, the real express app) whose store records the instant each run's finalize write commits.
 * A client on loopback in the same process sends quick_answer sync requests and notes when the last
 * byte of each response arrives; sync wait = response end - finalize commit (same clock). Measured with
 * one request in flight (the wait mechanism itself) and with `concurrency` in flight (then the wait also
 * queues behind the other runs' work on the one event loop, client included).
 *
 * Compared with the design it replaces: a polling wait, implemented here on the Store API (start the run,
 * read the store, sleep 200 ms, read, sleep 400 ms, ... up to 2 s), served by a second small express app
 * over the same engine and store, measured the same way.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import pino from 'pino';
import { presentExecution } from '../src/api/app.ts';
import { DEFAULT_SERVER_LIMITS } from '../src/api/server.ts';
import { assembleSwitchyard } from '../src/assemble.ts';
import { ScriptedModelProvider } from '../src/engine/agent/scripted.ts';
import { loadDefinitions } from '../src/engine/definitions.ts';
import { loadPrices } from '../src/engine/prices.ts';
import type { Finalization } from '../src/store/store.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { BENCH_API_KEY, closedLoop, createAgent } from './lib/http.ts';
import { REPO } from './lib/processes.ts';
import { createBenchTelemetry } from './lib/sdk.ts';
import { latencySummary, type LatencySummary } from './lib/stats.ts';

const TERMINAL = new Set(['success', 'failed', 'timed_out', 'canceled', 'paused']);
const POLL_FIRST_MS = 200;
const POLL_MAX_MS = 2_000;

/** The embedded store, noting when each run's finalize write committed. */
class TimingStore extends SqliteStore {
  readonly completedAt = new Map<string, number>();
  override async finalize(id: string, finalization: Finalization): Promise<boolean> {
    const applied = await super.finalize(id, finalization);
    if (applied) this.completedAt.set(id, performance.now());
    return applied;
  }
}

export interface SyncWaitOptions {
  readonly requests: number;
  readonly concurrency: number;
  readonly pollingRequests: number;
  readonly pollingConcurrency: number;
  readonly log: (line: string) => void;
}

export interface SyncWaitResult {
  /** Completion -> response end, ms, with the engine's wait (woken by the completion). */
  readonly notified: LatencySummary;
  /** The same at `concurrency` requests in flight: includes queueing behind the other runs' work. */
  readonly notifiedLoaded: LatencySummary;
  /** Completion -> response end, ms, with a 200 ms first-step polling wait. */
  readonly polling: LatencySummary;
  /** Whole request latency, for context. */
  readonly notifiedRequestMs: LatencySummary;
  readonly pollingRequestMs: LatencySummary;
  readonly failures: number;
}

async function listen(target: express.Express | Server): Promise<Server> {
  return new Promise((resolve) => {
    const server: Server = target.listen(0, '127.0.0.1', () => resolve(server));
  });
}

export async function measureSyncWait(options: SyncWaitOptions): Promise<SyncWaitResult> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-wait-'));
  const { sdk, telemetry } = createBenchTelemetry();
  const logger = pino({ level: 'silent' });
  const store = new TimingStore(join(dir, 'switchyard.db'));
  const { engine, runtime, server: engineServer } = assembleSwitchyard({
    telemetry, logger, store, definitions: loadDefinitions(join(REPO, 'examples')), prices: loadPrices(join(REPO, 'examples')),
    engine: { instanceId: 'bench-sync-wait', heartbeatMs: 2_000, staleAfterMs: 15_000, sweepIntervalMs: 60_000 },
    tools: {},
    providers: new Map([['scripted', new ScriptedModelProvider()]]),
    api: {
      apiKeys: [{ id: 'bench', key: BENCH_API_KEY, trigger: undefined }], bodyLimit: '1mb', syncTimeoutMs: 60_000, syncTimeoutMaxMs: 300_000,
      isReady: () => true, server: DEFAULT_SERVER_LIMITS,
    },
  });

  // The design this replaces: poll the store with a backoff whose first step is 200 ms.
  const pollingApp = express();
  pollingApp.use(express.json());
  pollingApp.post('/poll/workflows/:id/executions/sync', async (req, res) => {
    const started = await engine.start({ kind: 'workflow', target: String(req.params.id), input: (req.body as { input: unknown }).input, trigger: 'api_sync' });
    let backoff = POLL_FIRST_MS;
    for (;;) {
      const record = (await store.getExecution(started.id))!;
      if (TERMINAL.has(record.status)) {
        res.json(presentExecution(record));
        return;
      }
      await sleep(backoff);
      backoff = Math.min(backoff * 2, POLL_MAX_MS);
    }
  });

  const [server, pollingServer] = [await listen(engineServer), await listen(pollingApp)];
  let failures = 0;
  const measure = async (port: number, path: string, requests: number, concurrency: number) => {
    const waits: number[] = [];
    const agent = createAgent(concurrency);
    const result = await closedLoop({
      port, path, concurrency, durationMs: 120_000, maxRequests: requests, agent,
      body: (n) => JSON.stringify({ input: { question: ['How much does the pro plan cost?', 'I forgot my password'][n % 2] } }),
      onResponse: (response) => {
        try {
          const body = JSON.parse(response.body) as { id: string; status: string };
          const completed = store.completedAt.get(body.id);
          store.completedAt.delete(body.id);
          if (response.status !== 200 || body.status !== 'success' || completed === undefined) failures++;
          else waits.push(response.endedAt - completed);
        } catch {
          failures++;
        }
      },
    });
    agent.destroy();
    failures += result.errors;
    return { waits, latencies: result.latenciesMs };
  };
  try {
    const port = (server.address() as AddressInfo).port;
    const pollingPort = (pollingServer.address() as AddressInfo).port;
    // Warm-up (JIT, SQLite pages) on both paths.
    await measure(port, '/api/v1/workflows/quick_answer/executions/sync', Math.min(300, options.requests), options.concurrency);
    await measure(pollingPort, '/poll/workflows/quick_answer/executions/sync', options.pollingConcurrency, options.pollingConcurrency);
    failures = 0;
    // Interleaved halves: notified, polling, notified, polling.
    const notified = { waits: [] as number[], latencies: [] as number[] };
    const loaded = { waits: [] as number[], latencies: [] as number[] };
    const polling = { waits: [] as number[], latencies: [] as number[] };
    for (let half = 0; half < 2; half++) {
      const a = await measure(port, '/api/v1/workflows/quick_answer/executions/sync', Math.ceil(options.requests / 2), 1);
      notified.waits.push(...a.waits);
      notified.latencies.push(...a.latencies);
      const c = await measure(port, '/api/v1/workflows/quick_answer/executions/sync', Math.ceil(options.requests / 2), options.concurrency);
      loaded.waits.push(...c.waits);
      loaded.latencies.push(...c.latencies);
      const b = await measure(pollingPort, '/poll/workflows/quick_answer/executions/sync', Math.ceil(options.pollingRequests / 2), options.pollingConcurrency);
      polling.waits.push(...b.waits);
      polling.latencies.push(...b.latencies);
      options.log(`  sync wait half ${half + 1}/2: notified p99 ${latencySummary(notified.waits).p99.toFixed(2)} ms (1 in flight), ${latencySummary(loaded.waits).p99.toFixed(2)} ms (${options.concurrency} in flight), polling p50 ${latencySummary(polling.waits).p50.toFixed(1)} ms`);
    }
    return {
      notified: latencySummary(notified.waits),
      notifiedLoaded: latencySummary(loaded.waits),
      polling: latencySummary(polling.waits),
      notifiedRequestMs: latencySummary(notified.latencies),
      pollingRequestMs: latencySummary(polling.latencies),
      failures,
    };
  } finally {
    await engine.shutdown(5_000);
    for (const s of [server, pollingServer]) {
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
    await runtime.shutdown();
    await store.close();
    await sdk.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
}
