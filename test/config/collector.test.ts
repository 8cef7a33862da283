/**
 * collector/otelcol.yaml against collector/builder-config.yaml, and against the real Collector binary.
 *
 * - every component the config defines is used by the service, every one the service uses is defined;
 * - the builder manifest lists exactly the component types the config uses (nothing missing, nothing extra),
 *   all at the pinned Collector version;
 * - with the built binary: `otelcol components` has exactly those types, `otelcol validate` accepts the
 *   config, and a started Collector answers its health check and serves its own metrics, logging no
 *   deprecation warning and no error.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findStackBinary, missingBinaryPolicy } from '../../scripts/stack/binaries.ts';
import {
  CONTRIB_PREFIX, DEPRECATED_EXPORTER_TYPES, KINDS, binaryTypes, expectDefinedEqualsUsed, freePort, killStarted, loopbackCollector, manifestTypes, startAndStop, typeOf, usedTypes,
  type CollectorConfig, type Manifest,
} from './collector-manifest.ts';
import { readYaml, repoPath, run } from './tools.ts';

/**
 * One Collector release throughout (the pairing the environment's Go package list approves): core
 * modules and the distribution at 0.165.0, contrib modules at its patch 0.165.1, confmap providers at the
 * stable 1.71.0 that ships with core 0.165.0.
 */
const OTELCOL_VERSION = '0.165.0';
const CONTRIB_VERSION = '0.165.1';
const CONFMAP_VERSION = '1.71.0';

const config = readYaml<CollectorConfig>('collector/otelcol.yaml');
const manifest = readYaml<Manifest>('collector/builder-config.yaml');

describe('collector/otelcol.yaml', () => {
  it('defines every component the service uses and uses every component it defines', () => {
    expectDefinedEqualsUsed(config, 'collector/otelcol.yaml');
  });

  it('puts memory_limiter first in every pipeline, then batch', () => {
    for (const [name, pipeline] of Object.entries(config.service.pipelines)) {
      expect(pipeline.processors?.map(typeOf), `pipeline ${name}`).toEqual(['memory_limiter', 'batch']);
    }
  });

  it('gives every exporter a persistent sending queue and retries', () => {
    for (const [id, exporter] of Object.entries(config.exporters ?? {})) {
      const e = exporter as { sending_queue?: { enabled?: boolean; storage?: string }; retry_on_failure?: { enabled?: boolean } };
      expect(e.sending_queue?.enabled, `${id} sending_queue.enabled`).toBe(true);
      expect(e.sending_queue?.storage, `${id} sending_queue.storage`).toBe('file_storage');
      expect(e.retry_on_failure?.enabled, `${id} retry_on_failure.enabled`).toBe(true);
    }
  });

  it('uses no deprecated exporter name', () => {
    for (const id of Object.keys(config.exporters ?? {})) {
      const renamed = DEPRECATED_EXPORTER_TYPES[typeOf(id)];
      expect(renamed, `exporter ${id}: use ${renamed ?? ''}`).toBeUndefined();
    }
  });

  it('takes every endpoint, port and directory from the environment', () => {
    const text = readFileSync(repoPath('collector/otelcol.yaml'), 'utf8');
    for (const variable of ['OTLP_GRPC_ENDPOINT', 'OTLP_HTTP_ENDPOINT', 'OTELCOL_HEALTH_ENDPOINT', 'OTELCOL_STORAGE_DIR', 'TRACES_OTLP_GRPC_ENDPOINT', 'PROMETHEUS_HOST', 'LOGS_OTLP_HTTP_ENDPOINT', 'OTELCOL_SPANMETRICS_FLUSH_INTERVAL', 'OTELCOL_METRICS_HOST', 'OTELCOL_METRICS_PORT']) {
      expect(text, variable).toContain(`\${env:${variable}:-`);
    }
  });
});

describe('collector/builder-config.yaml', () => {
  it('lists exactly the components the config uses', () => {
    expect(manifestTypes(manifest)).toEqual(usedTypes(config));
  });

  it('pins the distribution and every module to one Collector release', () => {
    expect(String(manifest.dist.version)).toBe(OTELCOL_VERSION);
    const expected = (module: string) => (module.startsWith(CONTRIB_PREFIX) ? CONTRIB_VERSION : OTELCOL_VERSION);
    for (const kind of KINDS) {
      for (const entry of manifest[kind] ?? []) {
        const [module, version] = entry.gomod.split(/\s+/);
        expect(version, entry.gomod).toBe(`v${expected(module!)}`);
      }
    }
    expect(manifest.providers?.length).toBeGreaterThan(0);
    for (const entry of manifest.providers ?? []) expect(entry.gomod, entry.gomod).toMatch(new RegExp(` v${CONFMAP_VERSION.replaceAll('.', '\\.')}$`));
  });

  it('derives span metrics with exemplars in the Collector and sends them to Prometheus', () => {
    const spanmetrics = config.connectors?.['span_metrics'] as { exemplars?: { enabled?: boolean }; dimensions?: { name: string }[]; histogram?: { unit?: string } };
    expect(spanmetrics.exemplars?.enabled).toBe(true);
    expect(spanmetrics.histogram?.unit).toBe('s');
    // The span attributes of tools, agents and models (catalogue SPANS): the dashboards' exemplar series.
    expect(spanmetrics.dimensions?.map((d) => d.name)).toEqual(['gen_ai.tool.name', 'gen_ai.agent.name', 'gen_ai.request.model']);
    expect(config.service.pipelines['traces']?.exporters).toContain('span_metrics');
    expect(config.service.pipelines['metrics']?.receivers).toContain('span_metrics');
    expect(config.service.pipelines['metrics']?.exporters).toEqual(['otlp_http/prometheus']);
  });

  it('sends OTLP log records to the log store over OTLP/HTTP (Loki under compose: its /otlp endpoint)', () => {
    expect(config.service.pipelines['logs']).toEqual({ receivers: ['otlp'], processors: ['memory_limiter', 'batch'], exporters: ['otlp_http/logs'] });
    const exporter = config.exporters?.['otlp_http/logs'] as { endpoint?: string };
    // The exporter appends /v1/logs: Loki 3 takes OTLP at /otlp/v1/logs.
    expect(exporter.endpoint).toBe('${env:LOGS_OTLP_HTTP_ENDPOINT:-http://loki:3100/otlp}');
  });
});

// ---- with the real binary ----------------------------------------------------------------------

const otelcol = findStackBinary('otelcol');
const policy = missingBinaryPolicy(otelcol);
if (policy === 'skip') process.stderr.write(`collector.test.ts: skipping binary checks: ${otelcol.reason}\n`);

describe.skipIf(policy === 'skip')('the built Collector', () => {
  const bin = (): string => {
    if (!otelcol.path) throw new Error(`CI requires the Collector binary: ${otelcol.reason}`);
    return otelcol.path;
  };
  const storageDir = mkdtempSync(join(tmpdir(), 'switchyard-otelcol-test-'));
  afterAll(() => {
    killStarted();
    rmSync(storageDir, { recursive: true, force: true });
  });

  it('contains exactly the manifest components', async () => {
    expect(await binaryTypes(bin())).toEqual(manifestTypes(manifest));
  });

  it('validates collector/otelcol.yaml without deprecation warnings', async () => {
    const env = { ...process.env, OTELCOL_STORAGE_DIR: storageDir };
    const result = await run(bin(), ['validate', '--config', 'collector/otelcol.yaml'], undefined, env);
    expect(result.code, result.stderr).toBe(0);
    expect(`${result.stdout}${result.stderr}`.toLowerCase()).not.toContain('deprecat');
  });

  it('starts on loopback: health check answers, own metrics are served, the log has no deprecation or error', async () => {
    const { env: loopback, health, metrics, spare: [unusedTraceStore, unusedPrometheus] } = await loopbackCollector();
    const unusedLogStore = await freePort();
    const env = {
      ...process.env,
      ...loopback,
      OTELCOL_STORAGE_DIR: join(storageDir, 'run'),
      // Nothing listens there: the Collector must still start (exports are queued and retried).
      TRACES_OTLP_GRPC_ENDPOINT: `127.0.0.1:${unusedTraceStore}`,
      PROMETHEUS_HOST: `127.0.0.1:${unusedPrometheus}`,
      LOGS_OTLP_HTTP_ENDPOINT: `http://127.0.0.1:${unusedLogStore}/insert/opentelemetry`,
    };
    const { healthy, metrics: body, log } = await startAndStop(bin(), 'collector/otelcol.yaml', env, health, metrics);
    expect(healthy, `health check never answered; log:\n${log}`).toBe(true);
    expect(body).toMatch(/^otelcol_process_uptime_seconds_total\b/m);
    expect(log.toLowerCase(), log).not.toContain('deprecat');
    expect(log, log).not.toMatch(/\terror\t/);
  }, 40_000);
});
