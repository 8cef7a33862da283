/**
 * The Collector's logs pipeline (collector/otelcol.yaml: otlp -> memory_limiter -> batch -> otlp_http/logs)
 * with the real Collector and a real log store: VictoriaLogs (Apache-2.0), where compose runs Loki (AGPL,
 * never built here). OTLP log records sent by the OpenTelemetry JS SDK's own exporter, one inside a span and
 * one of another trace, are found with LogsQL by trace id, with their span id, severity, body, attributes
 * and resource. The stack tests (test/stack/stack.test.ts) show the same with the engine's own records.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT_CONTEXT, SeverityNumber, TraceFlags, trace } from '@opentelemetry/api';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findStackBinary, missingBinaryPolicy } from '../../scripts/stack/binaries.ts';
import { VictoriaLogsClient, isOk, until } from '../../scripts/stack/clients.ts';
import { ManagedProcess, freePort } from '../../scripts/stack/processes.ts';
import { loopbackCollector } from './collector-manifest.ts';
import { repoPath } from './tools.ts';

const otelcol = findStackBinary('otelcol');
const victorialogs = findStackBinary('victorialogs');
const policy = missingBinaryPolicy(otelcol.path ? victorialogs : otelcol);
if (policy === 'skip') process.stderr.write(`collector-logs.test.ts: skipping: ${otelcol.reason ?? victorialogs.reason}\n`);

describe.skipIf(policy === 'skip')('the Collector\'s logs pipeline into a real log store (VictoriaLogs)', () => {
  // Made in beforeAll, not while collecting: a skipped suite leaves no directory behind.
  let dir = '';
  const started: ManagedProcess[] = [];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-collector-logs-'));
  });
  afterAll(async () => {
    for (const proc of started.reverse()) await proc.stop(5_000);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function startReady(proc: ManagedProcess, url: string): Promise<void> {
    started.push(proc.start());
    await until(async () => {
      if (!proc.alive) throw new Error(`${proc.name} exited (${proc.exitInfo ?? '?'}):\n${proc.tail(20)}`);
      return (await isOk(url)) ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 250, what: `${proc.name} ready at ${url}` });
  }

  it('delivers OTLP log records with their trace and span ids, found by trace id', async () => {
    if (!otelcol.path || !victorialogs.path) throw new Error(`CI requires the Collector and VictoriaLogs: ${otelcol.reason ?? victorialogs.reason}`);
    const logStorePort = await freePort();
    await startReady(new ManagedProcess({
      name: 'victorialogs', command: victorialogs.path, logFile: join(dir, 'victorialogs.log'),
      args: [`-httpListenAddr=127.0.0.1:${logStorePort}`, `-storageDataPath=${join(dir, 'victorialogs')}`, '-loggerLevel=WARN'],
    }), `http://127.0.0.1:${logStorePort}/health`);

    const { env: loopback, health, spare: [unusedTraceStore, unusedPrometheus] } = await loopbackCollector();
    const collector = new ManagedProcess({
      name: 'otelcol', command: otelcol.path, logFile: join(dir, 'otelcol.log'),
      args: ['--config', repoPath('collector/otelcol.yaml')],
      env: {
        ...process.env, ...loopback,
        OTELCOL_STORAGE_DIR: join(dir, 'otelcol'),
        LOGS_OTLP_HTTP_ENDPOINT: `http://127.0.0.1:${logStorePort}/insert/opentelemetry`,
        // Nothing listens there: only the logs pipeline is under test.
        TRACES_OTLP_GRPC_ENDPOINT: `127.0.0.1:${unusedTraceStore}`,
        PROMETHEUS_HOST: `127.0.0.1:${unusedPrometheus}`,
      },
    });
    await startReady(collector, `http://127.0.0.1:${health}/`);

    const provider = new LoggerProvider({
      resource: resourceFromAttributes({ 'service.name': 'collector-logs-test', 'service.instance.id': 'one' }),
      processors: [new SimpleLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `http://${loopback['OTLP_HTTP_ENDPOINT']}/v1/logs` }) })],
    });
    const logger = provider.getLogger('collector-logs-test');
    const inSpan = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED };
    const other = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.SAMPLED };
    logger.emit({
      context: trace.setSpanContext(ROOT_CONTEXT, inSpan), severityNumber: SeverityNumber.WARN, severityText: 'warn',
      body: 'tool lookup failed (exit)', attributes: { execution_id: 'exec-1', attempt: 2 },
    });
    logger.emit({ context: trace.setSpanContext(ROOT_CONTEXT, other), severityNumber: SeverityNumber.INFO, body: 'another trace' });
    await provider.forceFlush();
    await provider.shutdown();

    const client = new VictoriaLogsClient(`http://127.0.0.1:${logStorePort}`);
    const records = await until(async () => {
      const found = await client.query(`trace_id:=${JSON.stringify(inSpan.traceId)}`);
      return found.length > 0 ? found : undefined;
    }, { timeoutMs: 60_000, intervalMs: 1_000, what: `the record of trace ${inSpan.traceId} in VictoriaLogs` });
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      _msg: 'tool lookup failed (exit)', trace_id: inSpan.traceId, span_id: inSpan.spanId, severity_text: 'warn', severity_number: '13',
      execution_id: 'exec-1', attempt: '2', 'service.name': 'collector-logs-test', 'service.instance.id': 'one',
    });
    // The other trace's record is there too, and only under its own id.
    const others = await client.query(`trace_id:=${JSON.stringify(other.traceId)}`);
    expect(others.map((r) => r['_msg'])).toEqual(['another trace']);
    expect(collector.tail(200)).not.toMatch(/\terror\t/);
  }, 180_000);
});
