/**
 * docker-compose.yml: valid against the Compose Specification schema (vendored from compose-go, see
 * fixtures/README.md), and held to the stack's rules: pinned images, healthchecks and healthy
 * dependencies, memory limits, ports on 127.0.0.1, no default Grafana password, mounted files exist.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { readYaml, repoPath } from './tools.ts';

interface Service {
  image?: string;
  security_opt?: string[];
  cap_drop?: string[];
  cap_add?: string[];
  read_only?: boolean;
  tmpfs?: string[];
  pids_limit?: number;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  secrets?: string[];
  profiles?: string[];
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  deploy?: { resources?: { limits?: { memory?: string } } };
}
interface Compose {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
}

const compose = readYaml<Compose>('docker-compose.yml');
const services = Object.entries(compose.services);

/** The contrib release a builder manifest pins (one throughout): the Collector images must be the same. */
function contribRelease(manifestFile: string): string {
  const manifest = readFileSync(repoPath(manifestFile), 'utf8');
  const versions = new Set([...manifest.matchAll(/opentelemetry-collector-contrib\/\S+ v(\S+)/g)].map((match) => match[1]!));
  if (versions.size !== 1) throw new Error(`${manifestFile}: contrib modules at ${[...versions].join(', ') || 'no version'}; expected one release`);
  return [...versions][0]!;
}

/** The contrib release of the Collector we build (collector/builder-config.yaml): the image must be the same. */
const CONTRIB_VERSION = contribRelease('collector/builder-config.yaml');
/** The Collector tier's release (collector/builder-tier.yaml): docker-compose.scale.yml's tier images. */
const TIER_CONTRIB_VERSION = contribRelease('collector/builder-tier.yaml');

/** Image versions every part of the project uses (scripts/stack-binaries.sh builds the same releases, Tempo aside). */
const PINNED: Record<string, string> = {
  'otel/opentelemetry-collector-contrib': CONTRIB_VERSION,
  'prom/prometheus': 'v3.16.0',
  'prom/alertmanager': 'v0.34.2',
  'grafana/grafana': '12.3.0',
  // Users only: Tempo is AGPL, never built here (CI's trace store is Jaeger; tempo/README.md).
  'grafana/tempo': '2.8.0',
  // Users only: Loki is AGPL, never built here (CI's log store is VictoriaLogs; loki/loki.yaml).
  'docker.io/grafana/loki': '3.7.4',
  // The release the store tests run on (Debian's PostgreSQL 15.18); its tags are major.minor.
  postgres: '15.18',
};

/** Checks a compose document against the Compose Specification JSON schema (vendored). */
function expectValidCompose(document: unknown): void {
  const schema = JSON.parse(readFileSync(repoPath('test/config/fixtures/compose-spec.json'), 'utf8')) as object;
  const validate = new Ajv2020({ allErrors: true, strict: false }).compile(schema);
  const valid = validate(document);
  expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
  expect(valid).toBe(true);
}

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification JSON schema', () => {
    expectValidCompose(compose);
  });

  it('is rejected by the schema when broken (the validation is real)', () => {
    const schema = JSON.parse(readFileSync(repoPath('test/config/fixtures/compose-spec.json'), 'utf8')) as object;
    const validate = new Ajv2020({ strict: false }).compile(schema);
    expect(validate({ services: { engine: { image: 'x', ports: 8080, restart: ['always'] } } })).toBe(false);
  });

  it('has the services of the stack', () => {
    expect(Object.keys(compose.services)).toEqual(
      expect.arrayContaining(['engine', 'loadgen', 'otel-collector', 'prometheus', 'tempo', 'loki', 'grafana', 'alertmanager', 'pager-sink']),
    );
  });

  it('pins every image to an exact version, the project-wide pins where there is one', () => {
    for (const [name, service] of services) {
      expect(service.image, name).toBeDefined();
      const image = service.image!;
      if (service.build) {
        expect(image, name).toBe('switchyard:local');
        continue;
      }
      // Fully qualified (docker.io/...): podman resolves short names only with a registries.conf alias.
      expect(image, name).toMatch(/^docker\.io\//);
      const [repo, tag] = image.replace(/^docker\.io\/(library\/)?/, '').split(':');
      expect(tag, `${name}: ${image}`).toMatch(repo === 'postgres' ? /^\d+\.\d+$/ : /^v?\d+\.\d+\.\d+$/);
      if (repo && PINNED[repo]) expect(tag, name).toBe(PINNED[repo]);
    }
  });

  it('runs the engine, load generator and pager sink from the repository image', () => {
    expect(compose.services['engine']?.command).toEqual(['node', '--import', './src/telemetry/register.ts', 'src/main.ts']);
    expect(compose.services['loadgen']?.command).toEqual(['node', 'src/loadgen/main.ts']);
    expect(compose.services['pager-sink']?.command).toEqual(['node', 'src/pager-sink/main.ts']);
    for (const [replica, instance] of [['engine', 'engine-1'], ['engine-2', 'engine-2']] as const) {
      expect(compose.services[replica]?.command, replica).toEqual(['node', '--import', './src/telemetry/register.ts', 'src/main.ts']);
      expect(compose.services[replica]?.environment, replica).toMatchObject({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector:4318',
        OTEL_SERVICE_NAME: 'switchyard-engine',
        OTEL_RESOURCE_ATTRIBUTES: 'service.namespace=switchyard,deployment.environment.name=local',
        SWITCHYARD_PORT: '8080',
        SWITCHYARD_INSTANCE_ID: instance,
        // Both on the one database, its password from a secret file, not the URL.
        SWITCHYARD_DB: 'postgres://switchyard@postgres:5432/switchyard',
        SWITCHYARD_DB_PASSWORD_FILE: '/run/secrets/postgres-password',
      });
      expect(compose.services[replica]?.depends_on?.['postgres']?.condition, replica).toBe('service_healthy');
    }
    expect(compose.services['postgres']?.environment).toMatchObject({ POSTGRES_USER: 'switchyard', POSTGRES_DB: 'switchyard', POSTGRES_PASSWORD_FILE: '/run/secrets/postgres-password' });
    expect(compose.services['postgres']?.healthcheck?.test).toContain('pg_isready');
    expect(compose.services['loadgen']?.environment).toMatchObject({ SWITCHYARD_URL: 'http://engine:8080,http://engine-2:8080' });
    expect(Object.keys(compose.services['loadgen']?.environment ?? {})).toEqual(expect.arrayContaining(['LOADGEN_RATE', 'LOADGEN_FAULTS']));
    expect(compose.services['engine']?.healthcheck?.test.join(' ')).toContain('/readyz');
  });

  it('hardens every service: no privilege gain, no capabilities but the commented few, a process limit', () => {
    const text = readFileSync(repoPath('docker-compose.yml'), 'utf8');
    for (const [name, service] of services) {
      expect(service.security_opt, name).toContain('no-new-privileges:true');
      expect(service.cap_drop, name).toEqual(['ALL']);
      expect(service.pids_limit, name).toBeGreaterThan(0);
      // Only the services that start as root get capabilities back, each list explained by a comment.
      if (service.cap_add) {
        expect(['postgres', 'otel-collector-volume-init'], name).toContain(name);
        const block = text.slice(text.indexOf(`\n  ${name}:\n`), text.indexOf('cap_add:', text.indexOf(`\n  ${name}:\n`)));
        for (const cap of service.cap_add) expect(block, `${name}: why ${cap}`).toContain(cap);
      }
    }
  });

  it('runs read-only root filesystems, scratch on tmpfs, except the AGPL services CI cannot run', () => {
    for (const [name, service] of services) {
      if (name === 'tempo' || name === 'grafana' || name === 'loki') continue;
      expect(service.read_only, name).toBe(true);
    }
    expect(compose.services['engine']?.tmpfs).toContain('/tmp');
    expect(compose.services['postgres']?.tmpfs).toEqual(expect.arrayContaining(['/tmp', '/var/run/postgresql']));
  });

  it('keeps Prometheus lifecycle endpoints (/-/quit, /-/reload) off', () => {
    expect(compose.services['prometheus']?.command).not.toContain('--web.enable-lifecycle');
  });

  it('publishes ports on 127.0.0.1 only', () => {
    for (const [name, service] of services) {
      for (const port of service.ports ?? []) expect(port, name).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    }
  });

  it('gives every long-running service a healthcheck, except the distroless Collector and Loki', () => {
    for (const [name, service] of services) {
      if (name === 'otel-collector' || name === 'loki' || name === 'loadgen' || name.endsWith('-init')) continue;
      expect(service.healthcheck, name).toBeDefined();
    }
  });

  it('waits for dependencies by condition, healthy wherever the dependency has a healthcheck', () => {
    for (const [name, service] of services) {
      for (const [dep, { condition }] of Object.entries(service.depends_on ?? {})) {
        const target = compose.services[dep];
        expect(target, `${name} depends on unknown ${dep}`).toBeDefined();
        if (target?.healthcheck) expect(condition, `${name} -> ${dep}`).toBe('service_healthy');
        else expect(['service_started', 'service_completed_successfully'], `${name} -> ${dep}`).toContain(condition);
      }
    }
  });

  it('limits the memory of every service', () => {
    for (const [name, service] of services) expect(service.deploy?.resources?.limits?.memory, name).toMatch(/^\d+[MG]$/);
  });

  it('keeps state in named volumes and mounts only files that exist', () => {
    for (const [name, service] of services) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('./')) expect(existsSync(repoPath(source)) || source === './grafana/dashboards', `${name}: ${source}`).toBe(true);
        else expect(Object.keys(compose.volumes), `${name}: ${source}`).toContain(source);
      }
    }
  });

  it('requires a Grafana admin password from the environment and allows anonymous viewers', () => {
    const env = compose.services['grafana']?.environment ?? {};
    expect(env['GF_SECURITY_ADMIN_PASSWORD']).toMatch(/^\$\{GF_ADMIN_PASSWORD:\?[^}]+\}$/);
    expect(env['GF_AUTH_ANONYMOUS_ENABLED']).toBe('true');
    expect(env['GF_AUTH_ANONYMOUS_ORG_ROLE']).toBe('Viewer');
    const home = env['GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH'];
    expect(home).toMatch(/^\/var\/lib\/grafana\/dashboards\/[a-z-]+\.json$/);
    expect(existsSync(repoPath('grafana/dashboards', home!.split('/').at(-1)!))).toBe(true);
  });

  it('enables what prometheus.yml relies on: OTLP and remote-write receivers, exemplar storage', () => {
    const command = compose.services['prometheus']?.command ?? [];
    expect(command).toEqual(
      expect.arrayContaining(['--web.enable-otlp-receiver', '--web.enable-remote-write-receiver', '--enable-feature=exemplar-storage']),
    );
    expect(compose.services['tempo']?.command).toContain('-config.expand-env=true');
  });
});

// ---- docker-compose.sqlite.yml: one engine on a SQLite file ----------------------------------------

/** `!override` (Compose 2.24.4+) replaces the base's list or map instead of merging with it. */
const OVERRIDE_TAGS = [
  { tag: '!override', collection: 'map' as const, resolve: <T>(value: T) => value },
  { tag: '!override', collection: 'seq' as const, resolve: <T>(value: T) => value },
];
const sqliteDocument = parseDocument(readFileSync(repoPath('docker-compose.sqlite.yml'), 'utf8'), { customTags: OVERRIDE_TAGS });
const sqlite = sqliteDocument.toJS() as Compose;
const isOverride = (service: string, key: string) => (sqliteDocument.getIn(['services', service, key], true) as { tag?: string } | undefined)?.tag === '!override';

describe('docker-compose.sqlite.yml', () => {
  // What `docker compose -f docker-compose.yml -f docker-compose.sqlite.yml config` yields, without Docker:
  // its maps merged over the base, its `!override` keys (secrets, depends_on) replacing the base's.
  const effective: Compose = structuredClone(compose);
  for (const [name, over] of Object.entries(sqlite.services)) {
    const service = effective.services[name]!;
    for (const [key, value] of Object.entries(over) as [keyof Service, unknown][]) {
      const current = service[key];
      (service as Record<string, unknown>)[key] = isOverride(name, key) || Array.isArray(value) || typeof value !== 'object'
        ? (key === 'volumes' ? [...(current as string[] | undefined ?? []), ...(value as string[])] : value)
        : { ...(current as object | undefined), ...(value as object) };
    }
  }
  // depends_on's short syntax (a list) means service_started, as Compose normalizes it.
  for (const service of Object.values(effective.services)) {
    const dependsOn = service.depends_on as Service['depends_on'] | string[] | undefined;
    if (Array.isArray(dependsOn)) service.depends_on = Object.fromEntries(dependsOn.map((name) => [name, { condition: 'service_started' }]));
  }
  effective.volumes = { ...compose.volumes, ...sqlite.volumes };
  const started = Object.entries(effective.services).filter(([, service]) => !service.profiles);

  it('is valid, alone and as the effective configuration', () => {
    expectValidCompose(sqlite);
    expectValidCompose(effective);
  });

  it('runs one engine on a SQLite file in a named volume, without PostgreSQL or the second replica', () => {
    expect(started.map(([name]) => name)).not.toEqual(expect.arrayContaining(['postgres']));
    expect(started.map(([name]) => name)).not.toContain('engine-2');
    const engine = effective.services['engine']!;
    expect(engine.environment).toMatchObject({ SWITCHYARD_DB: '/data/switchyard.db', SWITCHYARD_DB_PASSWORD_FILE: '' });
    expect(engine.volumes).toContain('engine-data:/data');
    expect(Object.keys(effective.volumes)).toContain('engine-data');
    expect(engine.secrets).toEqual(['api-keys']);
    expect(effective.services['loadgen']?.environment?.['SWITCHYARD_URL']).toBe('http://engine:8080');
    expect(effective.services['engine']?.depends_on).toEqual({ 'otel-collector': { condition: 'service_started' } });
    expect(effective.services['loadgen']?.depends_on).toEqual({ engine: { condition: 'service_started' } });
  });

  it('overrides lists only: podman-compose 1.6.0 crashes on `!override` of a map', () => {
    for (const [name, service] of Object.entries(sqlite.services)) {
      for (const key of Object.keys(service)) if (isOverride(name, key)) expect(Array.isArray(service[key as keyof Service]), `${name}.${key}`).toBe(true);
    }
  });

  it('leaves no started service depending on one that does not start', () => {
    const names = new Set(started.map(([name]) => name));
    for (const [name, service] of started) {
      for (const dependency of Object.keys(service.depends_on ?? {})) expect(names, `${name} -> ${dependency}`).toContain(dependency);
    }
  });
});

// ---- docker-compose.scale.yml: the Collector tier (agent + two tail-sampling gateways) ----------

const scale = readYaml<Compose>('docker-compose.scale.yml');
const TIER_SERVICES = ['otel-agent', 'otel-gateway-1', 'otel-gateway-2'];
const GATEWAYS = TIER_SERVICES.filter((name) => name.startsWith('otel-gateway-'));

/** `docker compose -f docker-compose.yml -f docker-compose.scale.yml`: maps merge, lists add up (a volume by its target), the rest is replaced. */
function mergeCompose(base: Compose, override: Compose): Compose {
  const merged: Compose = structuredClone(base);
  for (const [name, over] of Object.entries(override.services)) {
    const service: Service = { ...merged.services[name] };
    for (const [key, value] of Object.entries(over) as [keyof Service, unknown][]) {
      const current = service[key];
      if (key === 'volumes') {
        const byTarget = new Map([...(current as string[] | undefined ?? []), ...(value as string[])].map((v) => [v.split(':')[1], v]));
        service.volumes = [...byTarget.values()];
      } else if (Array.isArray(value) || typeof value !== 'object' || value === null) {
        (service as Record<string, unknown>)[key] = value;
      } else {
        (service as Record<string, unknown>)[key] = { ...(current as object | undefined), ...(value as object) };
      }
    }
    merged.services[name] = service;
  }
  return merged;
}
const merged = mergeCompose(compose, scale);

describe('docker-compose.scale.yml', () => {
  it('is valid against the Compose Specification JSON schema, alone and merged over docker-compose.yml', () => {
    expectValidCompose(scale);
    expectValidCompose(merged);
  });

  it('runs the agent and two gateways from the image of the tier release (collector/builder-tier.yaml), each with its config mounted', () => {
    expect(Object.keys(scale.services).filter((name) => name.startsWith('otel-') && name !== 'otel-collector')).toEqual(TIER_SERVICES);
    for (const name of TIER_SERVICES) {
      const service = scale.services[name]!;
      expect(service.image, name).toBe(`docker.io/otel/opentelemetry-collector-contrib:${TIER_CONTRIB_VERSION}`);
      const config = name === 'otel-agent' ? 'agent.yaml' : 'gateway.yaml';
      expect(service.command, name).toEqual([`--config=/etc/otelcol/${config}`]);
      expect(service.volumes, name).toEqual([`./collector/${config}:/etc/otelcol/${config}:ro`]);
      expect(service.deploy?.resources?.limits?.memory, name).toMatch(/^\d+[MG]$/);
      expect(service.ports ?? [], `${name} publishes nothing`).toEqual([]);
    }
  });

  it('sends the traces of otel-collector through the agent, by trace id to every gateway, and from the gateways to Tempo', () => {
    expect(merged.services['otel-collector']?.environment?.['TRACES_OTLP_GRPC_ENDPOINT']).toBe('otel-agent:4317');
    // Everything else of otel-collector is as in docker-compose.yml (span metrics and metrics unchanged).
    expect(merged.services['otel-collector']?.environment?.['PROMETHEUS_HOST']).toBe('prometheus:9090');
    expect(scale.services['otel-agent']?.environment?.['OTELCOL_GATEWAYS']).toBe(`[${GATEWAYS.map((g) => `${g}:4317`).join(', ')}]`);
    for (const name of GATEWAYS) {
      expect(scale.services[name]?.environment, name).toMatchObject({ OTELCOL_GATEWAY_ID: name, TRACES_OTLP_GRPC_ENDPOINT: 'tempo:4317' });
    }
  });

  it('starts each Collector after what it sends to, healthy wherever there is a healthcheck', () => {
    for (const [name, service] of Object.entries(scale.services)) {
      for (const [dep, { condition }] of Object.entries(service.depends_on ?? {})) {
        const target = merged.services[dep];
        expect(target, `${name} depends on unknown ${dep}`).toBeDefined();
        expect(condition, `${name} -> ${dep}`).toBe(target?.healthcheck ? 'service_healthy' : 'service_started');
      }
    }
    expect(Object.keys(merged.services['otel-collector']?.depends_on ?? {})).toContain('otel-agent');
    expect(Object.keys(scale.services['otel-agent']?.depends_on ?? {}).sort()).toEqual(GATEWAYS);
  });

  it('has Prometheus scrape the tier Collectors in the otel-collector job, from a file that exists', () => {
    const volumes = merged.services['prometheus']?.volumes ?? [];
    const mount = volumes.find((v) => v.split(':')[1] === '/etc/prometheus/targets/otel-collector.json');
    expect(mount).toBeDefined();
    const source = mount!.split(':')[0]!;
    expect(existsSync(repoPath(source)), source).toBe(true);
    const targets = (JSON.parse(readFileSync(repoPath(source), 'utf8')) as { targets: string[] }[]).flatMap((g) => g.targets);
    expect(targets.sort()).toEqual(['otel-collector', ...TIER_SERVICES].map((name) => `${name}:8888`).sort());
    // The base mounts stay (prometheus.yml, rules, alerts).
    expect(volumes).toEqual(expect.arrayContaining(['./prometheus:/etc/prometheus:ro', './alerts:/etc/alerts:ro']));
  });
});
