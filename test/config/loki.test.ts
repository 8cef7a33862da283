/**
 * loki/loki.yaml and its wiring, checked statically: Loki is what docker compose runs for users as the log
 * store, but its Go module is under the AGPL and is never built here (CI's log store is VictoriaLogs, in the
 * stack tests). So this test checks what a test can without running Loki: the file compose mounts, the
 * port that compose, Grafana and the Collector use, storage under the data volume, and what OTLP
 * ingestion needs (TSDB with schema v13, structured metadata for trace_id and span_id).
 */
import { describe, expect, it } from 'vitest';
import { readYaml, type ComposeService } from './tools.ts';

interface LokiConfig {
  auth_enabled: boolean;
  server: { http_listen_port: number; grpc_listen_port: number };
  common: { path_prefix: string; storage: { filesystem: Record<string, string> } };
  schema_config: { configs: Array<{ store: string; schema: string; object_store: string }> };
  limits_config: { allow_structured_metadata: boolean; retention_period: string };
  compactor: { working_directory: string; retention_enabled: boolean };
  analytics: { reporting_enabled: boolean };
}
const config = readYaml<LokiConfig>('loki/loki.yaml');
const compose = readYaml<{ services: Record<string, ComposeService> }>('docker-compose.yml').services;
const collector = readYaml<{ exporters: Record<string, { endpoint: string }> }>('collector/otelcol.yaml');

describe('loki/loki.yaml', () => {
  it('is the file compose mounts, on the pinned image, published on loopback only', () => {
    const loki = compose['loki']!;
    expect(loki.image).toMatch(/^docker\.io\/grafana\/loki:\d+\.\d+\.\d+$/);
    expect(loki.volumes).toContain('./loki/loki.yaml:/etc/loki/loki.yaml:ro');
    expect(loki.command).toEqual(['-config.file=/etc/loki/loki.yaml']);
    const port = config.server.http_listen_port;
    expect(loki.ports).toEqual([`127.0.0.1:${port}:${port}`]);
  });

  it('takes the Collector\'s log records at its OTLP endpoint, compose and the Collector\'s default agreeing', () => {
    const endpoint = `http://loki:${config.server.http_listen_port}/otlp`;
    expect(collector.exporters['otlp_http/logs']?.endpoint).toBe(`\${env:LOGS_OTLP_HTTP_ENDPOINT:-${endpoint}}`);
    expect(compose['otel-collector']?.environment?.['LOGS_OTLP_HTTP_ENDPOINT']).toBe(endpoint);
    expect(compose['otel-collector']?.depends_on?.['loki']).toBeDefined();
    expect(compose['grafana']?.depends_on?.['loki']).toBeDefined();
    // Tempo's gRPC port is 9096 and the pager sink's 9095, each in its own container; kept apart anyway.
    expect([9095, 9096]).not.toContain(config.server.grpc_listen_port);
  });

  it('stores under its data volume, with what OTLP ingestion needs, and reports no usage', () => {
    const dataMount = compose['loki']!.volumes!.find((v) => v.startsWith('loki-data:'))!.split(':')[1]!;
    expect(config.common.path_prefix).toBe(dataMount);
    for (const path of [...Object.values(config.common.storage.filesystem), config.compactor.working_directory]) {
      expect(path.startsWith(`${dataMount}/`), path).toBe(true);
    }
    // Structured metadata (OTLP trace_id/span_id) needs TSDB and schema v13.
    expect(config.schema_config.configs.at(-1)).toMatchObject({ store: 'tsdb', schema: 'v13', object_store: 'filesystem' });
    expect(config.limits_config.allow_structured_metadata).toBe(true);
    expect(config.compactor.retention_enabled).toBe(true);
    expect(config.auth_enabled).toBe(false);
    expect(config.analytics.reporting_enabled).toBe(false);
  });
});
