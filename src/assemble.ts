/**
 * The one composition root: how the parts of a Switchyard engine are put together. `main.ts`, the tests'
 * engine and the benchmarks all build through here, so what they test and measure is what runs; each
 * brings its own telemetry, store and definitions (main: the OTel SDK, the configured store, the project
 * directory; tests: in-memory telemetry and a temporary store).
 */
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { createApp } from './api/app.ts';
import { Authenticator, type ApiKey } from './api/auth.ts';
import { createHttpServer, type ServerLimits } from './api/server.ts';
import type { ModelProvider } from './engine/agent/model.ts';
import { OpenAiCompatibleProvider } from './engine/agent/openai-compatible.ts';
import { ScriptedModelProvider } from './engine/agent/scripted.ts';
import type { Definitions } from './engine/definitions.ts';
import { Engine, type EngineOptions } from './engine/engine.ts';
import type { PriceTable } from './engine/prices.ts';
import { ToolRuntime, type ToolRuntimeOptions } from './engine/runtime/tool-runtime.ts';
import type { Store } from './store/store.ts';
import type { Telemetry } from './telemetry/recorder.ts';

export interface SwitchyardParts {
  readonly telemetry: Telemetry;
  readonly logger: Logger;
  readonly store: Store;
  readonly definitions: Definitions;
  readonly prices: PriceTable;
  /** Instance id, heartbeat, staleness and sweep intervals, sync-wait fallback, the in-flight limit per key, retention, the data one execution may store. */
  readonly engine: Pick<EngineOptions, 'instanceId' | 'heartbeatMs' | 'staleAfterMs' | 'sweepIntervalMs' | 'waitFallbackFirstMs' | 'maxInFlightPerKey' | 'retention' | 'executionDataLimitBytes'>;
  /** The tool runtime's settings (output limit, fault injection, kill grace, ...). */
  readonly tools: Omit<ToolRuntimeOptions, 'telemetry' | 'logger'>;
  /** The OpenAI-compatible provider's defaults; or `providers` replaces the model providers altogether. */
  readonly models?: { readonly baseUrl?: string; readonly apiKey?: string };
  readonly providers?: ReadonlyMap<string, ModelProvider>;
  readonly api: {
    readonly apiKeys: readonly ApiKey[];
    readonly bodyLimit: string;
    readonly syncTimeoutMs: number;
    readonly syncTimeoutMaxMs: number;
    readonly isReady: () => boolean;
    readonly server: ServerLimits;
  };
}

export interface Switchyard {
  readonly engine: Engine;
  readonly runtime: ToolRuntime;
  /** The HTTP server around the API, not listening yet. */
  readonly server: Server;
  /** The API's key check, also asked by the telemetry which requests to trace (telemetry/instrumentations.ts). */
  readonly authenticator: Authenticator;
}

export function assembleSwitchyard(parts: SwitchyardParts): Switchyard {
  const { telemetry, logger, store, definitions, prices } = parts;
  // What is configured rather than measured (the hourly model budget) is exported as gauges too.
  telemetry.setConfiguredGauges(prices.gauges());
  const runtime = new ToolRuntime({ ...parts.tools, telemetry, logger });
  const providers = parts.providers ?? new Map<string, ModelProvider>([
    ['scripted', new ScriptedModelProvider()],
    ['openai-compatible', new OpenAiCompatibleProvider({ defaultBaseUrl: parts.models?.baseUrl, defaultApiKey: parts.models?.apiKey })],
  ]);
  const engine = new Engine({ ...parts.engine, store, definitions, runtime, telemetry, providers, logger, prices });
  const { api } = parts;
  const authenticator = new Authenticator(api.apiKeys);
  const app = createApp({
    engine, telemetry, logger, authenticator,
    bodyLimit: api.bodyLimit, syncTimeoutMs: api.syncTimeoutMs, syncTimeoutMaxMs: api.syncTimeoutMaxMs, isReady: api.isReady,
    toolSandbox: runtime.sandbox,
  });
  return { engine, runtime, authenticator, server: createHttpServer(app, api.server) };
}
