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
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { findStackBinary, missingBinaryPolicy } from '../support/stack-binaries.ts';
import { readYaml, repoPath, run } from './tools.ts';

/**
 * One Collector release throughout (the pairing the environment's Go package list approves): core
 * modules and the distribution at 0.165.0, contrib modules at its patch 0.165.1, confmap providers at the
 * stable 1.71.0 that ships with core 0.165.0.
 */
const OTELCOL_VERSION = '0.165.0';
const CONTRIB_VERSION = '0.165.1';
const CONFMAP_VERSION = '1.71.0';

const KINDS = ['receivers', 'processors', 'exporters', 'extensions', 'connectors'] as const;
type Kind = (typeof KINDS)[number];

interface Pipeline {
  receivers?: string[];
  processors?: string[];
  exporters?: string[];
}
type CollectorConfig = Partial<Record<Kind, Record<string, unknown>>> & {
  service: { extensions?: string[]; pipelines: Record<string, Pipeline> };
};
interface ManifestModule {
  gomod: string;
}
type Manifest = Partial<Record<Kind | 'providers', ManifestModule[]>> & { dist: { version: string } };

/**
 * Component type of each Go module the manifest may list (from the module's `component.MustNewType` at
 * 0.165). A module missing here fails the test: add it with its type. The binary check below
 * (`otelcol components`) confirms this table against the real build.
 */
const COMPONENT_TYPE_OF_MODULE: Readonly<Record<string, { kind: Kind; type: string }>> = {
  'go.opentelemetry.io/collector/receiver/otlpreceiver': { kind: 'receivers', type: 'otlp' },
  'go.opentelemetry.io/collector/processor/memorylimiterprocessor': { kind: 'processors', type: 'memory_limiter' },
  'go.opentelemetry.io/collector/processor/batchprocessor': { kind: 'processors', type: 'batch' },
  'go.opentelemetry.io/collector/exporter/otlpexporter': { kind: 'exporters', type: 'otlp_grpc' },
  'go.opentelemetry.io/collector/exporter/otlphttpexporter': { kind: 'exporters', type: 'otlp_http' },
  'go.opentelemetry.io/collector/exporter/debugexporter': { kind: 'exporters', type: 'debug' },
  'github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension': { kind: 'extensions', type: 'health_check' },
  'github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage': { kind: 'extensions', type: 'file_storage' },
  'github.com/open-telemetry/opentelemetry-collector-contrib/connector/spanmetricsconnector': { kind: 'connectors', type: 'span_metrics' },
};

/** Exporter types the 0.165 Collector still accepts but logs as deprecated, with their new names. */
const DEPRECATED_EXPORTER_TYPES: Readonly<Record<string, string>> = { otlp: 'otlp_grpc', otlphttp: 'otlp_http' };

const config = readYaml<CollectorConfig>('collector/otelcol.yaml');
const manifest = readYaml<Manifest>('collector/builder-config.yaml');

const typeOf = (id: string): string => id.split('/')[0] ?? id;

/** Component ids the service references, per kind. Connectors appear as both exporter and receiver. */
function referencedIds(): Record<Kind, Set<string>> {
  const refs: Record<Kind, Set<string>> = {
    receivers: new Set(),
    processors: new Set(),
    exporters: new Set(),
    extensions: new Set(config.service.extensions ?? []),
    connectors: new Set(),
  };
  const connectorIds = new Set(Object.keys(config.connectors ?? {}));
  for (const pipeline of Object.values(config.service.pipelines)) {
    for (const id of pipeline.receivers ?? []) (connectorIds.has(id) ? refs.connectors : refs.receivers).add(id);
    for (const id of pipeline.processors ?? []) refs.processors.add(id);
    for (const id of pipeline.exporters ?? []) (connectorIds.has(id) ? refs.connectors : refs.exporters).add(id);
  }
  return refs;
}

function usedTypes(): Record<Kind, string[]> {
  const refs = referencedIds();
  return Object.fromEntries(KINDS.map((kind) => [kind, [...new Set([...refs[kind]].map(typeOf))].sort()])) as Record<Kind, string[]>;
}

function manifestTypes(): Record<Kind, string[]> {
  const types = Object.fromEntries(KINDS.map((kind) => [kind, [] as string[]])) as Record<Kind, string[]>;
  for (const kind of KINDS) {
    for (const entry of manifest[kind] ?? []) {
      const [module] = entry.gomod.split(/\s+/);
      const known = COMPONENT_TYPE_OF_MODULE[module ?? ''];
      if (!known) throw new Error(`builder-config.yaml: unknown module ${module}; add its component type to COMPONENT_TYPE_OF_MODULE`);
      expect(known.kind, `${module} is listed under ${kind}`).toBe(kind);
      types[kind].push(known.type);
    }
    types[kind].sort();
  }
  return types;
}

describe('collector/otelcol.yaml', () => {
  it('defines every component the service uses and uses every component it defines', () => {
    const refs = referencedIds();
    for (const kind of KINDS) {
      const defined = Object.keys(config[kind] ?? {}).sort();
      expect([...refs[kind]].sort(), `${kind} used by the service vs defined`).toEqual(defined);
    }
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
    for (const variable of ['OTLP_GRPC_ENDPOINT', 'OTLP_HTTP_ENDPOINT', 'OTELCOL_HEALTH_ENDPOINT', 'OTELCOL_STORAGE_DIR', 'TRACES_OTLP_GRPC_ENDPOINT', 'PROMETHEUS_HOST', 'OTELCOL_SPANMETRICS_FLUSH_INTERVAL', 'OTELCOL_METRICS_HOST', 'OTELCOL_METRICS_PORT']) {
      expect(text, variable).toContain(`\${env:${variable}:-`);
    }
  });
});

describe('collector/builder-config.yaml', () => {
  it('lists exactly the components the config uses', () => {
    expect(manifestTypes()).toEqual(usedTypes());
  });

  it('pins the distribution and every module to one Collector release', () => {
    expect(String(manifest.dist.version)).toBe(OTELCOL_VERSION);
    const expected = (module: string) => (module.startsWith('github.com/open-telemetry/opentelemetry-collector-contrib/') ? CONTRIB_VERSION : OTELCOL_VERSION);
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
});

// ---- with the real binary ----------------------------------------------------------------------

const otelcol = findStackBinary('otelcol');
const policy = missingBinaryPolicy(otelcol);
if (policy === 'skip') process.stderr.write(`collector.test.ts: skipping binary checks: ${otelcol.reason}\n`);

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

describe.skipIf(policy === 'skip')('the built Collector', () => {
  const bin = (): string => {
    if (!otelcol.path) throw new Error(`CI requires the Collector binary: ${otelcol.reason}`);
    return otelcol.path;
  };
  const storageDir = mkdtempSync(join(tmpdir(), 'switchyard-otelcol-test-'));
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGKILL');
    rmSync(storageDir, { recursive: true, force: true });
  });

  it('contains exactly the manifest components', async () => {
    const result = await run(bin(), ['components']);
    expect(result.code, result.stderr).toBe(0);
    const components = parse(result.stdout) as Partial<Record<Kind, { name: string }[]>>;
    const fromBinary = Object.fromEntries(KINDS.map((kind) => [kind, (components[kind] ?? []).map((c) => c.name).sort()]));
    expect(fromBinary).toEqual(manifestTypes());
  });

  it('validates collector/otelcol.yaml without deprecation warnings', async () => {
    const env = { ...process.env, OTELCOL_STORAGE_DIR: storageDir };
    const result = await run(bin(), ['validate', '--config', 'collector/otelcol.yaml'], undefined, env);
    expect(result.code, result.stderr).toBe(0);
    expect(`${result.stdout}${result.stderr}`.toLowerCase()).not.toContain('deprecat');
  });

  it('starts on loopback: health check answers, own metrics are served, the log has no deprecation or error', async () => {
    const [grpc, http, health, metrics, unusedTraceStore, unusedPrometheus] = await Promise.all(Array.from({ length: 6 }, freePort));
    const env = {
      ...process.env,
      OTLP_GRPC_ENDPOINT: `127.0.0.1:${grpc}`,
      OTLP_HTTP_ENDPOINT: `127.0.0.1:${http}`,
      OTELCOL_HEALTH_ENDPOINT: `127.0.0.1:${health}`,
      OTELCOL_METRICS_HOST: '127.0.0.1',
      OTELCOL_METRICS_PORT: String(metrics),
      OTELCOL_STORAGE_DIR: join(storageDir, 'run'),
      // Nothing listens there: the Collector must still start (exports are queued and retried).
      TRACES_OTLP_GRPC_ENDPOINT: `127.0.0.1:${unusedTraceStore}`,
      PROMETHEUS_HOST: `127.0.0.1:${unusedPrometheus}`,
    };
    let log = '';
    child = spawn(bin(), ['--config', 'collector/otelcol.yaml'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const exited = new Promise<number | null>((resolveExit) => child?.once('exit', resolveExit));

    const deadline = Date.now() + 20_000;
    let healthy = false;
    while (!healthy && Date.now() < deadline) {
      healthy = await fetch(`http://127.0.0.1:${health}/`).then((r) => r.ok, () => false);
      if (!healthy) await new Promise((r) => setTimeout(r, 200));
    }
    expect(healthy, `health check never answered; log:\n${log}`).toBe(true);

    const body = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
    expect(body).toMatch(/^otelcol_process_uptime_seconds_total\b/m);

    child.kill('SIGTERM');
    await exited;
    expect(log.toLowerCase(), log).not.toContain('deprecat');
    expect(log, log).not.toMatch(/\terror\t/);
  }, 40_000);
});
