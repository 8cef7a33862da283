/**
 * tempo/tempo.yaml, checked statically: Tempo is what docker compose runs for users, but its Go module is
 * under the AGPL and is never built here (CI's trace store is Jaeger; tempo/README.md says what only
 * `docker compose up` exercises). So this test checks what a test can without running Tempo: every
 * variable has a default, the components are the ones described, and the ports and endpoints agree with
 * docker-compose.yml, the Collector config and Grafana's datasource.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readYaml, repoPath, type ComposeService } from './tools.ts';

interface TempoConfig {
  stream_over_http_enabled: boolean;
  server: { http_listen_port: string | number; grpc_listen_port: string | number };
  distributor: { receivers: { otlp: { protocols: { grpc: { endpoint: string }; http: { endpoint: string } } } } };
  metrics_generator: {
    storage: { path: string; remote_write: Array<{ url: string; send_exemplars?: boolean }> };
    processor: Record<string, unknown>;
  };
  storage: { trace: { backend: string; wal: { path: string }; local: { path: string } } };
  overrides: { defaults: { metrics_generator: { processors: string[] } } };
  usage_report: { reporting_enabled: boolean };
}

const TEMPO = 'tempo/tempo.yaml';
const text = readFileSync(repoPath(TEMPO), 'utf8');
const config = readYaml<TempoConfig>(TEMPO);
const compose = readYaml<{ services: Record<string, ComposeService> }>('docker-compose.yml').services;
const collector = readYaml<{ exporters: Record<string, { endpoint: string }> }>('collector/otelcol.yaml');
const datasources = readYaml<{ datasources: Array<{ uid: string; url: string }> }>('grafana/provisioning/datasources/datasources.yaml').datasources;

/** `${TEMPO_X:-default}` -> its default; a literal stays as it is (what Tempo sees under compose, which sets none of these but the data dir and remote-write URL). */
function composeValue(value: string | number): string {
  const raw = String(value);
  const match = /^\$\{(TEMPO_[A-Z_]+):-([^}]+)\}$/.exec(raw);
  if (!match) return raw;
  return compose['tempo']?.environment?.[match[1]!] ?? match[2]!;
}

/** The value a variable reference in the file resolves to under compose, wherever it sits in a string. */
const expand = (value: string): string => value.replace(/\$\{(TEMPO_[A-Z_]+):-([^}]+)\}/g, (whole) => composeValue(whole));

const portOf = (endpoint: string): string => endpoint.slice(endpoint.lastIndexOf(':') + 1);

describe('tempo/tempo.yaml', () => {
  it('gives every environment variable a default (-config.expand-env uses ${VAR:-default})', () => {
    const references = text.match(/\$\{[^}]*\}/g) ?? [];
    expect(references.length).toBeGreaterThan(5);
    for (const ref of references) expect(ref).toMatch(/^\$\{TEMPO_[A-Z_]+:-[^}]+\}$/);
  });

  it('is the file compose mounts, run with environment expansion, on the pinned image', () => {
    const tempo = compose['tempo']!;
    expect(tempo.image).toMatch(/^docker\.io\/grafana\/tempo:\d+\.\d+\.\d+$/);
    expect(tempo.volumes).toContain('./tempo/tempo.yaml:/etc/tempo/tempo.yaml:ro');
    expect(tempo.command).toEqual(['-config.file=/etc/tempo/tempo.yaml', '-config.expand-env=true']);
    // Every variable compose sets is one the file reads.
    for (const variable of Object.keys(tempo.environment ?? {})) expect(text, variable).toContain(`\${${variable}:-`);
  });

  it('listens where compose, Grafana and the Collector expect it', () => {
    const httpPort = composeValue(config.server.http_listen_port);
    const tempo = compose['tempo']!;
    expect(tempo.ports).toContain(`127.0.0.1:${httpPort}:${httpPort}`);
    expect(tempo.healthcheck?.test.join(' ')).toContain(`http://127.0.0.1:${httpPort}/ready`);
    expect(datasources.find((d) => d.uid === 'tempo')?.url).toBe(`http://tempo:${httpPort}`);
    // The Collector's trace exporter defaults to Tempo's OTLP/gRPC receiver, and compose sets the same.
    const grpcPort = portOf(composeValue(config.distributor.receivers.otlp.protocols.grpc.endpoint));
    const exporterDefault = /^\$\{env:TRACES_OTLP_GRPC_ENDPOINT:-([^}]+)\}$/.exec(collector.exporters['otlp_grpc/traces']!.endpoint)?.[1];
    expect(exporterDefault).toBe(`tempo:${grpcPort}`);
    expect(compose['otel-collector']?.environment?.['TRACES_OTLP_GRPC_ENDPOINT']).toBe(`tempo:${grpcPort}`);
    // 9095 is the pager sink's port; Tempo's internal gRPC port must not collide with it.
    expect(composeValue(config.server.grpc_listen_port)).not.toBe('9095');
  });

  it('receives OTLP over gRPC and HTTP, stores locally under its data volume, and reports no usage', () => {
    expect(config.distributor.receivers.otlp.protocols.grpc.endpoint).toContain('TEMPO_OTLP_GRPC_ENDPOINT');
    expect(config.distributor.receivers.otlp.protocols.http.endpoint).toContain('TEMPO_OTLP_HTTP_ENDPOINT');
    expect(config.storage.trace.backend).toBe('local');
    const dataMount = compose['tempo']!.volumes!.find((v) => v.startsWith('tempo-data:'))!.split(':')[1]!;
    for (const path of [config.storage.trace.wal.path, config.storage.trace.local.path, config.metrics_generator.storage.path]) {
      expect(expand(path).startsWith(`${dataMount}/`), path).toBe(true);
    }
    expect(config.usage_report.reporting_enabled).toBe(false);
  });

  it('generates only the service graph (span metrics come from the Collector), remote-written to Prometheus', () => {
    expect(config.overrides.defaults.metrics_generator.processors).toEqual(['service-graphs']);
    expect(Object.keys(config.metrics_generator.processor)).toEqual(['service_graphs']);
    const [remoteWrite] = config.metrics_generator.storage.remote_write;
    expect(remoteWrite?.url).toBe('${TEMPO_REMOTE_WRITE_URL:-http://prometheus:9090/api/v1/write}');
    expect(compose['tempo']?.environment?.['TEMPO_REMOTE_WRITE_URL']).toBe('http://prometheus:9090/api/v1/write');
    // Prometheus under compose accepts remote write.
    expect(compose['prometheus']?.command).toContain('--web.enable-remote-write-receiver');
  });
});
