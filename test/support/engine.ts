/**
 * A real engine for tests: the sample project (or another project directory), the embedded SQLite store
 * in a temporary file (or a store of the test's own, such as PostgreSQL), real Bun tool subprocesses,
 * in-memory telemetry, and the HTTP API on a loopback port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { ApiKey } from '../../src/api/auth.ts';
import { DEFAULT_SERVER_LIMITS, type ServerLimits } from '../../src/api/server.ts';
import { assembleSwitchyard } from '../../src/assemble.ts';
import type { ModelProvider } from '../../src/engine/agent/model.ts';
import { loadDefinitions } from '../../src/engine/definitions.ts';
import type { Engine, EngineOptions } from '../../src/engine/engine.ts';
import { loadPrices, type PriceTable } from '../../src/engine/prices.ts';
import type { ToolRuntime } from '../../src/engine/runtime/tool-runtime.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/store.ts';
import type { Telemetry } from '../../src/telemetry/recorder.ts';
import { createTestTelemetry, type TestTelemetry } from './telemetry.ts';

export interface TestEngine {
  readonly engine: Engine;
  readonly store: Store;
  readonly runtime: ToolRuntime;
  readonly observed: TestTelemetry;
  readonly dbPath: string;
  readonly url: string;
  /** Sends TEST_API_KEY unless `headers` has its own authorization (an empty one sends none). */
  post(path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  get(path: string, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

export interface TestEngineOptions {
  readonly projectDir?: string;
  readonly dbPath?: string;
  /** The store to run on instead of a SQLite file (closed with the engine). */
  readonly store?: Store;
  /** Replaces the in-memory telemetry's recorder (e.g. one whose meter throws). */
  readonly telemetry?: Telemetry;
  readonly engine?: Partial<Pick<EngineOptions, 'instanceId' | 'heartbeatMs' | 'staleAfterMs' | 'sweepIntervalMs' | 'waitFallbackFirstMs' | 'maxInFlightPerKey' | 'retention' | 'executionDataLimitBytes'>>;
  /** The bound on tool processes at once (default: the runtime's). */
  readonly maxToolProcesses?: number;
  readonly syncTimeoutMs?: number;
  readonly providers?: ReadonlyMap<string, ModelProvider>;
  /** Default: TEST_KEYS; [] runs without authentication, as on a loopback address with no keys configured. */
  readonly apiKeys?: readonly ApiKey[];
  readonly bodyLimit?: string;
  readonly serverLimits?: ServerLimits;
  readonly toolFaults?: boolean;
  /** Default: the project directory's prices.yaml. */
  readonly prices?: PriceTable;
  /** Default: a silent logger. */
  readonly logger?: pino.Logger;
}

/** The keys of test engines: a plain caller and the load generator (whose runs are labelled `loadgen`). */
export const TEST_API_KEY = 'test-key-0123456789abcdef';
export const TEST_LOADGEN_KEY = 'test-loadgen-key-0123456789';
export const TEST_KEYS: readonly ApiKey[] = [
  { id: 'tester', key: TEST_API_KEY, trigger: undefined },
  { id: 'loadgen', key: TEST_LOADGEN_KEY, trigger: 'loadgen' },
];
export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** The default authorization header unless the caller's headers decide (an empty authorization sends none). */
function withAuth(headers: Record<string, string>, keys: readonly ApiKey[]): Record<string, string> {
  const own = Object.keys(headers).find((name) => name.toLowerCase() === 'authorization');
  if (own === undefined) return keys.length > 0 ? { ...bearer(keys[0]!.key), ...headers } : headers;
  if (headers[own] !== '') return headers;
  const { [own]: _dropped, ...rest } = headers;
  return rest;
}

export async function startTestEngine(options: TestEngineOptions = {}): Promise<TestEngine> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-test-'));
  const dbPath = options.dbPath ?? join(dir, 'switchyard.db');
  const observed = createTestTelemetry();
  const telemetry = options.telemetry ?? observed.telemetry;
  const logger = options.logger ?? pino({ level: 'silent' });
  const store = options.store ?? new SqliteStore(dbPath);
  const definitions = loadDefinitions(options.projectDir ?? 'examples');
  const apiKeys = options.apiKeys ?? TEST_KEYS;
  const { engine, runtime, server } = assembleSwitchyard({
    telemetry, logger, store, definitions, prices: options.prices ?? loadPrices(options.projectDir ?? 'examples'),
    engine: { instanceId: 'test-engine', heartbeatMs: 1_000, staleAfterMs: 10_000, sweepIntervalMs: 60_000, ...options.engine },
    tools: { killGraceMs: 300, toolFaults: options.toolFaults ?? true, ...(options.maxToolProcesses === undefined ? {} : { maxProcesses: options.maxToolProcesses }) },
    ...(options.providers ? { providers: options.providers } : {}),
    api: {
      apiKeys, bodyLimit: options.bodyLimit ?? '100kb', syncTimeoutMs: options.syncTimeoutMs ?? 20_000, syncTimeoutMaxMs: 300_000,
      isReady: () => true, server: options.serverLimits ?? DEFAULT_SERVER_LIMITS,
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const parse = async (response: Response) => {
    const text = await response.text();
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  };
  return {
    engine, store, runtime, observed, dbPath, url,
    async post(path, body, headers = {}) {
      const response = await fetch(url + path, {
        method: 'POST',
        headers: withAuth(body === undefined ? headers : { 'content-type': 'application/json', ...headers }, apiKeys),
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      return { status: response.status, body: await parse(response), headers: response.headers };
    },
    async get(path, headers = {}) {
      const response = await fetch(url + path, { headers: withAuth(headers, apiKeys) });
      return { status: response.status, body: await parse(response), headers: response.headers };
    },
    async close() {
      await engine.shutdown(2_000);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await runtime.shutdown();
      await store.close();
      await observed.shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const TICKET = {
  email: 'ada@analytical.example',
  subject: 'Refund for double charge',
  body: 'I was charged twice this month, please refund one payment',
};

/** Polls the store until `predicate` holds (for states reached asynchronously); fails after `timeoutMs`. */
export async function eventually<T>(read: () => Promise<T>, predicate: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (predicate(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not reached within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export { childPids, spawnHelperPid, toolPids } from '../runtime/tools.ts';

