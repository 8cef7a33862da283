/**
 * What the Collector config tests share (test/config/collector.test.ts for collector/otelcol.yaml and
 * builder-config.yaml, test/config/collector-tier.test.ts for collector/agent.yaml, gateway.yaml and
 * builder-tier.yaml): the component types a config uses, the types a builder manifest lists, and a
 * started Collector's health check, metrics and log.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { expect } from 'vitest';
import { parse } from 'yaml';
import { REPO, run } from './tools.ts';

export const KINDS = ['receivers', 'processors', 'exporters', 'extensions', 'connectors'] as const;
export type Kind = (typeof KINDS)[number];

export interface Pipeline {
  receivers?: string[];
  processors?: string[];
  exporters?: string[];
}
export type CollectorConfig = Partial<Record<Kind, Record<string, unknown>>> & {
  service: { extensions?: string[]; pipelines: Record<string, Pipeline> };
};
export interface ManifestModule {
  gomod: string;
}
export type Manifest = Partial<Record<Kind | 'providers', ManifestModule[]>> & { dist: { version: string }; replaces?: string[] };

/**
 * Component type of each Go module a manifest may list (from the module's `component.MustNewType` at the
 * release the manifest pins). A module missing here fails the test: add it with its type. The binary checks
 * (`otelcol components`) confirm this table against the real builds.
 */
export const COMPONENT_TYPE_OF_MODULE: Readonly<Record<string, { kind: Kind; type: string }>> = {
  'go.opentelemetry.io/collector/receiver/otlpreceiver': { kind: 'receivers', type: 'otlp' },
  'go.opentelemetry.io/collector/processor/memorylimiterprocessor': { kind: 'processors', type: 'memory_limiter' },
  'go.opentelemetry.io/collector/processor/batchprocessor': { kind: 'processors', type: 'batch' },
  'go.opentelemetry.io/collector/exporter/otlpexporter': { kind: 'exporters', type: 'otlp_grpc' },
  'go.opentelemetry.io/collector/exporter/otlphttpexporter': { kind: 'exporters', type: 'otlp_http' },
  'go.opentelemetry.io/collector/exporter/debugexporter': { kind: 'exporters', type: 'debug' },
  'github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension': { kind: 'extensions', type: 'health_check' },
  'github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage': { kind: 'extensions', type: 'file_storage' },
  'github.com/open-telemetry/opentelemetry-collector-contrib/connector/spanmetricsconnector': { kind: 'connectors', type: 'span_metrics' },
  'github.com/open-telemetry/opentelemetry-collector-contrib/processor/tailsamplingprocessor': { kind: 'processors', type: 'tail_sampling' },
  'github.com/open-telemetry/opentelemetry-collector-contrib/processor/attributesprocessor': { kind: 'processors', type: 'attributes' },
  'github.com/open-telemetry/opentelemetry-collector-contrib/exporter/loadbalancingexporter': { kind: 'exporters', type: 'load_balancing' },
};

/** Exporter types still accepted but logged as deprecated, with their new names. */
export const DEPRECATED_EXPORTER_TYPES: Readonly<Record<string, string>> = { otlp: 'otlp_grpc', otlphttp: 'otlp_http', loadbalancing: 'load_balancing' };

export const CONTRIB_PREFIX = 'github.com/open-telemetry/opentelemetry-collector-contrib/';

export const typeOf = (id: string): string => id.split('/')[0] ?? id;

/** Component ids the service references, per kind. Connectors appear as both exporter and receiver. */
export function referencedIds(config: CollectorConfig): Record<Kind, Set<string>> {
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

/** The component types the configs use together, per kind, sorted. */
export function usedTypes(...configs: CollectorConfig[]): Record<Kind, string[]> {
  const used = Object.fromEntries(KINDS.map((kind) => [kind, new Set<string>()])) as Record<Kind, Set<string>>;
  for (const config of configs) {
    const refs = referencedIds(config);
    for (const kind of KINDS) for (const id of refs[kind]) used[kind].add(typeOf(id));
  }
  return Object.fromEntries(KINDS.map((kind) => [kind, [...used[kind]].sort()])) as Record<Kind, string[]>;
}

/** Every component module of a manifest with its version and kind. */
export function manifestModules(manifest: Manifest): { kind: Kind; module: string; version: string }[] {
  return KINDS.flatMap((kind) => (manifest[kind] ?? []).map((entry) => {
    const [module, version] = entry.gomod.split(/\s+/);
    return { kind, module: module ?? '', version: version ?? '' };
  }));
}

/** The component types a manifest lists, per kind, sorted (each module checked to sit under its kind). */
export function manifestTypes(manifest: Manifest): Record<Kind, string[]> {
  const types = Object.fromEntries(KINDS.map((kind) => [kind, [] as string[]])) as Record<Kind, string[]>;
  for (const { kind, module } of manifestModules(manifest)) {
    const known = COMPONENT_TYPE_OF_MODULE[module];
    if (!known) throw new Error(`builder manifest: unknown module ${module}; add its component type to COMPONENT_TYPE_OF_MODULE`);
    expect(known.kind, `${module} is listed under ${kind}`).toBe(kind);
    types[kind].push(known.type);
  }
  for (const kind of KINDS) types[kind].sort();
  return types;
}

/** Checks every component the config defines is used by the service, and every one it uses is defined. */
export function expectDefinedEqualsUsed(config: CollectorConfig, file: string): void {
  const refs = referencedIds(config);
  for (const kind of KINDS) {
    const defined = Object.keys(config[kind] ?? {}).sort();
    expect([...refs[kind]].sort(), `${file}: ${kind} used by the service vs defined`).toEqual(defined);
  }
}

/** The component types a built Collector contains (`<bin> components`), per kind, sorted. */
export async function binaryTypes(bin: string): Promise<Record<string, string[]>> {
  const result = await run(bin, ['components']);
  expect(result.code, result.stderr).toBe(0);
  const components = parse(result.stdout) as Partial<Record<Kind, { name: string }[]>>;
  return Object.fromEntries(KINDS.map((kind) => [kind, (components[kind] ?? []).map((c) => c.name).sort()]));
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Free loopback ports for a Collector to start on, and the environment every Switchyard Collector config
 * reads them from (OTLP receivers, health check, own metrics); `spare`: two ports nothing listens on, for
 * the exporters' destinations.
 */
export async function loopbackCollector(): Promise<{ env: Record<string, string>; health: number; metrics: number; spare: [number, number] }> {
  const [grpc, http, health, metrics, spare1, spare2] = await Promise.all(Array.from({ length: 6 }, freePort)) as [number, number, number, number, number, number];
  return {
    health, metrics, spare: [spare1, spare2],
    env: {
      OTLP_GRPC_ENDPOINT: `127.0.0.1:${grpc}`,
      OTLP_HTTP_ENDPOINT: `127.0.0.1:${http}`,
      OTELCOL_HEALTH_ENDPOINT: `127.0.0.1:${health}`,
      OTELCOL_METRICS_HOST: '127.0.0.1',
      OTELCOL_METRICS_PORT: String(metrics),
    },
  };
}

const started = new Set<ChildProcess>();

/** Kills every Collector startAndStop started that is still running (for an afterAll after a timeout). */
export function killStarted(): void {
  for (const child of started) child.kill('SIGKILL');
  started.clear();
}

/**
 * Starts a Collector (`<bin> --config <config>`, config relative to the repository, the environment given), waits for its health check on
 * `healthPort`, reads its own metrics on `metricsPort`, stops it with SIGTERM. Returns whether it became
 * healthy, the metrics page and everything it logged.
 */
export async function startAndStop(bin: string, config: string, env: NodeJS.ProcessEnv, healthPort: number, metricsPort: number):
  Promise<{ healthy: boolean; metrics: string; log: string }> {
  let log = '';
  const child = spawn(bin, ['--config', config], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  child.stdout.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  // 'close': the process exited and its output streams are drained.
  const exited = new Promise<number | null>((resolveExit) => child.once('close', resolveExit));
  const deadline = Date.now() + 20_000;
  let healthy = false;
  while (!healthy && Date.now() < deadline && child.exitCode === null) {
    healthy = await fetch(`http://127.0.0.1:${healthPort}/`).then((r) => r.ok, () => false);
    if (!healthy) await new Promise((r) => setTimeout(r, 200));
  }
  const metrics = healthy ? await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text(), () => '') : '';
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
  started.delete(child);
  // The log includes what it wrote while stopping.
  return { healthy, metrics, log };
}
