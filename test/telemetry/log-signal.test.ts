/**
 * The log signal through the engine's real setup (telemetry/sdk.ts + telemetry/logs.ts) to a local OTLP/HTTP
 * endpoint (JSON): a pino line written inside a span goes out as an OTLP log record with that span's
 * trace and span ids, its severity, body and fields, under the engine's resource; a line outside any span
 * has no trace id; OTEL_LOGS_EXPORTER=none builds no processor and leaves pino unpatched.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { trace } from '@opentelemetry/api';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { logRecordProcessorsFromEnv, otelPino } from '../../src/telemetry/logs.ts';
import { startTelemetrySdk, type TelemetrySdk } from '../../src/telemetry/sdk.ts';

interface OtlpValue { stringValue?: string; intValue?: string | number }
interface OtlpLogRecord {
  traceId?: string;
  spanId?: string;
  severityNumber?: number;
  severityText?: string;
  body?: OtlpValue;
  attributes?: { key: string; value: OtlpValue }[];
}
interface OtlpLogs {
  resourceLogs: { resource: { attributes: { key: string; value: OtlpValue }[] }; scopeLogs: { logRecords: OtlpLogRecord[] }[] }[];
}

const logBodies: OtlpLogs[] = [];
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    if (req.url === '/v1/logs') logBodies.push(JSON.parse(body) as OtlpLogs);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
const saved = { ...process.env };
let sdk: TelemetrySdk;

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  Object.assign(process.env, {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_METRIC_EXPORT_INTERVAL: '600000',
  });
  delete process.env.OTEL_LOGS_EXPORTER;
  delete process.env.OTEL_SDK_DISABLED;
  sdk = startTelemetrySdk({ serviceVersion: 'test', instanceId: 'log-signal' });
});

afterAll(async () => {
  await sdk.shutdown();
  server.closeAllConnections();
  server.close();
  process.env = saved;
});

const exportedRecords = (): OtlpLogRecord[] =>
  logBodies.flatMap((b) => b.resourceLogs.flatMap((r) => r.scopeLogs.flatMap((s) => s.logRecords)));
const attribute = (record: OtlpLogRecord, key: string) => record.attributes?.find((a) => a.key === key)?.value;

it('sends a line written inside a span as an OTLP log record with the span\'s trace and span ids', async () => {
  const lines: string[] = [];
  const destination = new Writable({ write(chunk: Buffer, _encoding, done) { lines.push(chunk.toString()); done(); } });
  const logger = createLogger('info', { destination });
  const { traceId, spanId } = trace.getTracer('log-signal-test').startActiveSpan('work', (span) => {
    logger.warn({ execution_id: 'exec-1', attempt: 2 }, 'tool call retried');
    span.end();
    return span.spanContext();
  });
  logger.info('outside any span');
  await sdk.forceFlush();

  const inner = exportedRecords().find((r) => r.body?.stringValue === 'tool call retried');
  expect(inner, JSON.stringify(logBodies)).toBeDefined();
  // The line on stdout and the record carry the same ids: those of the span active when it was written.
  const line = JSON.parse(lines.find((l) => l.includes('tool call retried'))!) as { trace_id: string; span_id: string };
  expect(inner!.traceId).toBe(traceId);
  expect(inner!.spanId).toBe(spanId);
  expect(line.trace_id).toBe(traceId);
  expect(line.span_id).toBe(spanId);
  expect(inner!.severityText).toBe('warn');
  expect(inner!.severityNumber).toBe(13); // SeverityNumber.WARN
  expect(attribute(inner!, 'execution_id')?.stringValue).toBe('exec-1');
  expect(Number(attribute(inner!, 'attempt')?.intValue)).toBe(2);
  // trace_id and span_id are the record's own fields, not repeated as attributes.
  expect(attribute(inner!, 'trace_id')).toBeUndefined();

  const outside = exportedRecords().find((r) => r.body?.stringValue === 'outside any span');
  expect(outside).toBeDefined();
  expect(outside!.traceId ?? '').toBe('');

  const resource = Object.fromEntries(logBodies[0]!.resourceLogs[0]!.resource.attributes.map((a) => [a.key, a.value.stringValue]));
  expect(resource).toMatchObject({ 'service.name': 'switchyard-engine', 'service.instance.id': 'log-signal' });
});

it('builds no log record processor and leaves pino unpatched with OTEL_LOGS_EXPORTER=none or the SDK disabled', () => {
  expect(logRecordProcessorsFromEnv({ OTEL_LOGS_EXPORTER: 'none' })).toEqual([]);
  expect(logRecordProcessorsFromEnv({ OTEL_LOGS_EXPORTER: 'otlp,none' })).toEqual([]);
  expect(logRecordProcessorsFromEnv({})).toHaveLength(1);
  expect(logRecordProcessorsFromEnv({ OTEL_LOGS_EXPORTER: 'otlp,console' })).toHaveLength(2);
  expect(otelPino({ OTEL_LOGS_EXPORTER: 'none' })).toBe(pino);
  expect(otelPino({ OTEL_SDK_DISABLED: 'true' })).toBe(pino);
  expect(otelPino({})).not.toBe(pino);
});
