import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { z } from 'zod';

const milliseconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const EnvSchema = z.object({
  SWITCHYARD_HOST: z.string().default('127.0.0.1'),
  SWITCHYARD_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  SWITCHYARD_PROJECT_DIR: z.string().default('examples'),
  SWITCHYARD_DB: z.string().default('data/switchyard.db'),
  SWITCHYARD_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SWITCHYARD_INSTANCE_ID: z.string().optional(),
  SWITCHYARD_SYNC_TIMEOUT_MS: milliseconds(60_000),
  SWITCHYARD_SYNC_TIMEOUT_MAX_MS: milliseconds(300_000),
  SWITCHYARD_HEARTBEAT_MS: milliseconds(2_000),
  SWITCHYARD_STALE_AFTER_MS: milliseconds(15_000),
  SWITCHYARD_SWEEP_INTERVAL_MS: milliseconds(5_000),
  SWITCHYARD_SHUTDOWN_GRACE_MS: milliseconds(10_000),
  SWITCHYARD_TELEMETRY_FLUSH_MS: milliseconds(5_000),
  SWITCHYARD_TOOL_OUTPUT_LIMIT_BYTES: z.coerce.number().int().positive().default(10 * 1024 * 1024),
  SWITCHYARD_BODY_LIMIT: z.string().default('1mb'),
  SWITCHYARD_MODEL_BASE_URL: z.string().url().optional(),
  SWITCHYARD_MODEL_API_KEY: z.string().optional(),
});

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly projectDir: string;
  readonly dbPath: string;
  readonly logLevel: z.infer<typeof EnvSchema>['SWITCHYARD_LOG_LEVEL'];
  /** Identifies this engine process: owner of its executions' heartbeats and service.instance.id. */
  readonly instanceId: string;
  readonly syncTimeoutMs: number;
  readonly syncTimeoutMaxMs: number;
  readonly heartbeatMs: number;
  readonly staleAfterMs: number;
  readonly sweepIntervalMs: number;
  readonly shutdownGraceMs: number;
  /** At shutdown, how long the last telemetry export may take before the process exits anyway. */
  readonly telemetryFlushMs: number;
  readonly toolOutputLimitBytes: number;
  readonly bodyLimit: string;
  readonly modelBaseUrl: string | undefined;
  readonly modelApiKey: string | undefined;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads the engine's configuration from the environment, once, and says exactly what is wrong. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  if (e.SWITCHYARD_STALE_AFTER_MS <= e.SWITCHYARD_HEARTBEAT_MS * 2) {
    throw new ConfigError('invalid configuration: SWITCHYARD_STALE_AFTER_MS must exceed twice SWITCHYARD_HEARTBEAT_MS, or live runs would be swept');
  }
  return {
    host: e.SWITCHYARD_HOST,
    port: e.SWITCHYARD_PORT,
    projectDir: resolve(e.SWITCHYARD_PROJECT_DIR),
    dbPath: e.SWITCHYARD_DB === ':memory:' ? e.SWITCHYARD_DB : resolve(e.SWITCHYARD_DB),
    logLevel: e.SWITCHYARD_LOG_LEVEL,
    instanceId: e.SWITCHYARD_INSTANCE_ID ?? randomUUID(),
    syncTimeoutMs: Math.min(e.SWITCHYARD_SYNC_TIMEOUT_MS, e.SWITCHYARD_SYNC_TIMEOUT_MAX_MS),
    syncTimeoutMaxMs: e.SWITCHYARD_SYNC_TIMEOUT_MAX_MS,
    heartbeatMs: e.SWITCHYARD_HEARTBEAT_MS,
    staleAfterMs: e.SWITCHYARD_STALE_AFTER_MS,
    sweepIntervalMs: e.SWITCHYARD_SWEEP_INTERVAL_MS,
    shutdownGraceMs: e.SWITCHYARD_SHUTDOWN_GRACE_MS,
    telemetryFlushMs: e.SWITCHYARD_TELEMETRY_FLUSH_MS,
    toolOutputLimitBytes: e.SWITCHYARD_TOOL_OUTPUT_LIMIT_BYTES,
    bodyLimit: e.SWITCHYARD_BODY_LIMIT,
    modelBaseUrl: e.SWITCHYARD_MODEL_BASE_URL,
    modelApiKey: e.SWITCHYARD_MODEL_API_KEY,
  };
}
