/**
 * A real engine for tests: the sample project (or another project directory), the embedded SQLite store
 * in a temporary file, real Bun tool subprocesses, in-memory telemetry, and the HTTP API on a loopback
 * port.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createApp } from '../../src/api/app.ts';
import { Authenticator, type ApiKey } from '../../src/api/auth.ts';
import { createHttpServer, DEFAULT_SERVER_LIMITS, type ServerLimits } from '../../src/api/server.ts';
import { OpenAiCompatibleProvider } from '../../src/engine/agent/openai-compatible.ts';
import { ScriptedModelProvider } from '../../src/engine/agent/scripted.ts';
import type { ModelProvider } from '../../src/engine/agent/model.ts';
import { loadDefinitions } from '../../src/engine/definitions.ts';
import { Engine, type EngineOptions } from '../../src/engine/engine.ts';
import { loadPrices, type PriceTable } from '../../src/engine/prices.ts';
import { ToolRuntime } from '../../src/engine/runtime/tool-runtime.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { Telemetry } from '../../src/telemetry/recorder.ts';
import { createTestTelemetry, type TestTelemetry } from './telemetry.ts';

export interface TestEngine {
  readonly engine: Engine;
  readonly store: SqliteStore;
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
  /** Replaces the in-memory telemetry's recorder (e.g. one whose meter throws). */
  readonly telemetry?: Telemetry;
  readonly engine?: Partial<Pick<EngineOptions, 'instanceId' | 'heartbeatMs' | 'staleAfterMs' | 'sweepIntervalMs' | 'waitFallbackFirstMs'>>;
  readonly syncTimeoutMs?: number;
  readonly providers?: ReadonlyMap<string, ModelProvider>;
  /** Default: TEST_KEYS; [] runs without authentication, as on a loopback address with no keys configured. */
  readonly apiKeys?: readonly ApiKey[];
  readonly bodyLimit?: string;
  readonly serverLimits?: ServerLimits;
  readonly toolFaults?: boolean;
  /** Default: the project directory's prices.yaml. */
  readonly prices?: PriceTable;
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
  const logger = pino({ level: 'silent' });
  const store = new SqliteStore(dbPath);
  const definitions = loadDefinitions(options.projectDir ?? 'examples');
  const runtime = new ToolRuntime({ telemetry, logger, killGraceMs: 300, toolFaults: options.toolFaults ?? true });
  const providers = options.providers ?? new Map<string, ModelProvider>([
    ['scripted', new ScriptedModelProvider()],
    ['openai-compatible', new OpenAiCompatibleProvider()],
  ]);
  const prices = options.prices ?? loadPrices(options.projectDir ?? 'examples');
  telemetry.setConfiguredGauges(prices.gauges());
  const engine = new Engine({
    store, definitions, runtime, telemetry, providers, logger, prices,
    instanceId: 'test-engine', heartbeatMs: 1_000, staleAfterMs: 10_000, sweepIntervalMs: 60_000,
    ...options.engine,
  });
  const apiKeys = options.apiKeys ?? TEST_KEYS;
  const app = createApp({
    engine, telemetry, logger, authenticator: new Authenticator(apiKeys),
    bodyLimit: options.bodyLimit ?? '100kb', syncTimeoutMs: options.syncTimeoutMs ?? 20_000, syncTimeoutMaxMs: 300_000, isReady: () => true,
  });
  const server: Server = createHttpServer(app, options.serverLimits ?? DEFAULT_SERVER_LIMITS);
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

/** Direct children of a process (Linux /proc), e.g. the tool processes of an engine process. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
