/**
 * The log signal: which log record processors OTEL_LOGS_EXPORTER asks for, and pino's records sent to the
 * OpenTelemetry Logs API (the global LoggerProvider that sdk.ts registers).
 *
 * pino -> Logs API is @opentelemetry/instrumentation-pino's "log sending" (and "log correlation": trace_id,
 * span_id and trace_flags in every line written inside a span). The instrumentation patches pino when pino
 * is loaded through its loader hook (`node --import ...`, as NodeSDK with auto-instrumentations-node is
 * started); the engine imports pino before telemetry starts, so `otelPino` applies the instrumentation's
 * own patch to the pino module once, through its module definition, as bundler plugins apply
 * instrumentations. Once NodeSDK with auto-instrumentations-node (pino instrumentation enabled) starts
 * before the engine, pino is patched already: `otelPino` must then go (each patch adds its own stream,
 * so both would send every record twice) and createLogger uses plain `pino`.
 */
import { PinoInstrumentation } from '@opentelemetry/instrumentation-pino';
import { OTLPLogExporter as OTLPLogExporterJson } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as OTLPLogExporterProto } from '@opentelemetry/exporter-logs-otlp-proto';
import { BatchLogRecordProcessor, ConsoleLogRecordExporter, SimpleLogRecordProcessor, type LogRecordProcessor } from '@opentelemetry/sdk-logs';
import pino from 'pino';

let patched: typeof pino | undefined;

/**
 * The pino factory for the engine's loggers: with the pino instrumentation's patch, so they also emit every
 * record to the Logs API, unless the environment turns the log signal off (OTEL_SDK_DISABLED=true,
 * OTEL_LOGS_EXPORTER=none): then plain pino, which costs nothing more.
 */
export function otelPino(env: NodeJS.ProcessEnv = process.env): typeof pino {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true' || logExporterNames(env).includes('none')) return pino;
  if (patched) return patched;
  const definition = new PinoInstrumentation().getModuleDefinitions().find((d) => d.name === 'pino');
  if (!definition?.patch) throw new Error('@opentelemetry/instrumentation-pino has no patch for pino');
  patched = definition.patch(pino) as typeof pino;
  return patched;
}

/**
 * The log record processors NodeSDK would build from the environment: OTEL_LOGS_EXPORTER (comma-separated
 * `otlp` (default), `console`, `none`), OTLP over HTTP (protobuf, or JSON with
 * OTEL_EXPORTER_OTLP_LOGS_PROTOCOL / OTEL_EXPORTER_OTLP_PROTOCOL = http/json; the exporter reads
 * OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, _HEADERS, _TIMEOUT, _COMPRESSION and their OTEL_EXPORTER_OTLP_* defaults
 * itself), batched by OTEL_BLRP_SCHEDULE_DELAY, _MAX_QUEUE_SIZE, _MAX_EXPORT_BATCH_SIZE, _EXPORT_TIMEOUT.
 */
export function logRecordProcessorsFromEnv(env: NodeJS.ProcessEnv): LogRecordProcessor[] {
  const names = logExporterNames(env);
  if (names.includes('none')) return [];
  const protocol = (env.OTEL_EXPORTER_OTLP_LOGS_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
  const processors: LogRecordProcessor[] = [];
  for (const name of new Set(names)) {
    if (name === 'console') processors.push(new SimpleLogRecordProcessor({ exporter: new ConsoleLogRecordExporter() }));
    if (name !== 'otlp') continue;
    processors.push(new BatchLogRecordProcessor({
      exporter: protocol === 'http/json' ? new OTLPLogExporterJson() : new OTLPLogExporterProto(),
      scheduledDelayMillis: envInt(env.OTEL_BLRP_SCHEDULE_DELAY),
      maxQueueSize: envInt(env.OTEL_BLRP_MAX_QUEUE_SIZE),
      maxExportBatchSize: envInt(env.OTEL_BLRP_MAX_EXPORT_BATCH_SIZE),
      exportTimeoutMillis: envInt(env.OTEL_BLRP_EXPORT_TIMEOUT),
    }));
  }
  return processors;
}

/** OTEL_LOGS_EXPORTER's names, lower case; `otlp` when unset or empty. */
function logExporterNames(env: NodeJS.ProcessEnv): string[] {
  const names = (env.OTEL_LOGS_EXPORTER ?? '').split(',').map((name) => name.trim().toLowerCase()).filter(Boolean);
  return names.length > 0 ? names : ['otlp'];
}

/** A positive integer setting, or undefined for the SDK's default. */
function envInt(value: string | undefined): number | undefined {
  const parsed = Number(value);
  return Number.isInteger(parsed) && parsed > 0 ? parsed : undefined;
}
