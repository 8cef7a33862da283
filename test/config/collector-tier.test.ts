/**
 * The Collector tier for more than one machine: collector/agent.yaml and collector/gateway.yaml against
 * collector/builder-tier.yaml, and against the real tier binary (OTELCOL_TIER_BIN).
 *
 * - each config defines exactly what its service uses; memory_limiter comes first in every pipeline;
 * - the agent routes spans by trace id to a list of gateways; the gateway samples whole traces (errors,
 *   slow traces, a share of the rest) with no batching before the decision, and tags what it keeps;
 * - the manifest lists exactly the component types the two configs use, all at one release (core and
 *   contrib 0.161.0, confmap providers at the stable 1.67.0 of that release), and replaces no Collector module;
 * - with the built binary: `components` has exactly those types, `validate` accepts both configs without a
 *   deprecation warning, and each role starts on loopback (health check, own metrics, a clean log).
 * The end-to-end behaviour (two gateways, Jaeger behind them) is test/stack/collector-tier.test.ts.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { findStackBinary, missingBinaryPolicy } from '../../scripts/stack/binaries.ts';
import {
  CONTRIB_PREFIX, DEPRECATED_EXPORTER_TYPES, binaryTypes, expectDefinedEqualsUsed, killStarted, loopbackCollector, manifestModules, manifestTypes,
  startAndStop, typeOf, usedTypes, type CollectorConfig, type Manifest,
} from './collector-manifest.ts';
import { readYaml, repoPath, run } from './tools.ts';

/**
 * The tier's one release: core modules and the distribution at 0.161.0, contrib at 0.161.0, confmap
 * providers at 1.67.0 (what go.opentelemetry.io/collector/otelcol@v0.161.0 requires). The tail sampling
 * processor passes only at 0.161.0 in the environment's Go package list; the loadbalancing exporter is
 * served at 0.161.0 and refused at 0.165.1 (collector/README.md).
 */
const TIER_VERSION = '0.161.0';
const TIER_CONFMAP_VERSION = '1.67.0';

const CONFIGS = ['collector/agent.yaml', 'collector/gateway.yaml'] as const;
const agent = readYaml<CollectorConfig>('collector/agent.yaml');
const gateway = readYaml<CollectorConfig>('collector/gateway.yaml');
const manifest = readYaml<Manifest>('collector/builder-tier.yaml');

type Processors = Record<string, Record<string, unknown>>;

describe('collector/agent.yaml and collector/gateway.yaml', () => {
  it('define every component their service uses and use every component they define', () => {
    expectDefinedEqualsUsed(agent, 'collector/agent.yaml');
    expectDefinedEqualsUsed(gateway, 'collector/gateway.yaml');
  });

  it('put memory_limiter first in every pipeline and use no deprecated exporter name', () => {
    for (const [file, config] of [['agent', agent], ['gateway', gateway]] as const) {
      for (const [name, pipeline] of Object.entries(config.service.pipelines)) {
        expect(pipeline.processors?.[0], `${file} pipeline ${name}`).toBe('memory_limiter');
      }
      for (const id of Object.keys(config.exporters ?? {})) expect(DEPRECATED_EXPORTER_TYPES[typeOf(id)], `${file} exporter ${id}`).toBeUndefined();
    }
  });

  it('the agent sends every trace to the gateways by trace id, and does nothing else with it', () => {
    expect(Object.keys(agent.service.pipelines)).toEqual(['traces']);
    expect(agent.service.pipelines['traces']?.exporters).toEqual(['load_balancing']);
    const lb = agent.exporters?.['load_balancing'] as { routing_key?: string; resolver?: { static?: { hostnames?: unknown } }; protocol?: { otlp?: { tls?: { insecure?: boolean } } } };
    expect(lb.routing_key).toBe('traceID');
    // The gateway list comes from the environment, as a YAML list, with the compose services as default.
    expect(lb.resolver?.static?.hostnames).toBe('${env:OTELCOL_GATEWAYS:-[otel-gateway-1:4317, otel-gateway-2:4317]}');
    expect(agent.processors?.['tail_sampling'], 'no sampling in the agent').toBeUndefined();
  });

  it('the gateway decides on whole traces: errors, slow traces and a share of the rest, before batching, then tags them', () => {
    expect(Object.keys(gateway.service.pipelines)).toEqual(['traces']);
    const pipeline = gateway.service.pipelines['traces']!;
    expect(pipeline.processors).toEqual(['memory_limiter', 'tail_sampling', 'attributes/gateway', 'batch']);
    expect(pipeline.exporters).toEqual(['otlp_grpc/traces']);
    const tail = (gateway.processors as Processors)['tail_sampling'] as { decision_wait?: string; policies?: { name: string; type: string; [k: string]: unknown }[]; decision_cache?: Record<string, number> };
    expect(tail.policies?.map((p) => [p.name, p.type])).toEqual([['errors', 'status_code'], ['slow', 'latency'], ['share', 'probabilistic']]);
    expect(tail.policies?.[0]?.['status_code']).toEqual({ status_codes: ['ERROR'] });
    expect(tail.policies?.[1]?.['latency']).toEqual({ threshold_ms: '${env:OTELCOL_TAIL_LATENCY_THRESHOLD_MS:-2000}' });
    expect(tail.policies?.[2]?.['probabilistic']).toEqual({ sampling_percentage: '${env:OTELCOL_TAIL_SAMPLING_PERCENTAGE:-25}' });
    expect(tail.decision_wait).toBe('${env:OTELCOL_TAIL_DECISION_WAIT:-10s}');
    // Late spans follow their trace's decision.
    expect(tail.decision_cache?.['sampled_cache_size']).toBeGreaterThan(0);
    expect(tail.decision_cache?.['non_sampled_cache_size']).toBeGreaterThan(0);
    const tag = (gateway.processors as Processors)['attributes/gateway'] as { actions: { key: string; value: string; action: string }[] };
    expect(tag.actions).toEqual([{ key: 'switchyard.collector.gateway', value: '${env:OTELCOL_GATEWAY_ID:-gateway}', action: 'upsert' }]);
  });

  it('take every endpoint, port and sampling knob from the environment', () => {
    const common = ['OTLP_GRPC_ENDPOINT', 'OTLP_HTTP_ENDPOINT', 'OTELCOL_HEALTH_ENDPOINT', 'OTELCOL_METRICS_HOST', 'OTELCOL_METRICS_PORT'];
    const wanted: Record<(typeof CONFIGS)[number], string[]> = {
      'collector/agent.yaml': [...common, 'OTELCOL_GATEWAYS'],
      'collector/gateway.yaml': [...common, 'TRACES_OTLP_GRPC_ENDPOINT', 'OTELCOL_GATEWAY_ID', 'OTELCOL_TAIL_DECISION_WAIT',
        'OTELCOL_TAIL_LATENCY_THRESHOLD_MS', 'OTELCOL_TAIL_SAMPLING_PERCENTAGE', 'OTELCOL_TAIL_NUM_TRACES'],
    };
    for (const file of CONFIGS) {
      const text = readFileSync(repoPath(file), 'utf8');
      for (const variable of wanted[file]) expect(text, `${file}: ${variable}`).toContain(`\${env:${variable}:-`);
    }
  });
});

describe('collector/builder-tier.yaml', () => {
  it('lists exactly the components the two configs use', () => {
    expect(manifestTypes(manifest)).toEqual(usedTypes(agent, gateway));
  });

  it('pins the distribution, every component module (core and contrib) and the providers to one release', () => {
    expect(String(manifest.dist.version)).toBe(TIER_VERSION);
    const modules = manifestModules(manifest);
    expect(modules.some((m) => m.module.startsWith(CONTRIB_PREFIX))).toBe(true);
    for (const { module, version } of modules) expect(version, module).toBe(`v${TIER_VERSION}`);
    expect(manifest.providers?.length).toBeGreaterThan(0);
    for (const entry of manifest.providers ?? []) expect(entry.gomod, entry.gomod).toMatch(new RegExp(` v${TIER_CONFMAP_VERSION.replaceAll('.', '\\.')}$`));
  });

  it('replaces no Collector module, and a dependency only by a release of the same module', () => {
    for (const line of manifest.replaces ?? []) {
      const match = /^(\S+) => (\S+) (v\S+)$/.exec(line);
      expect(match, `replace "${line}": a module by a version of the same module`).not.toBeNull();
      expect(match![2], line).toBe(match![1]);
      expect(match![1], line).not.toMatch(/^go\.opentelemetry\.io\/collector|^github\.com\/open-telemetry\//);
    }
  });
});

// ---- with the real binary ----------------------------------------------------------------------

const tierBin = findStackBinary('otelcolTier');
const policy = missingBinaryPolicy(tierBin);
if (policy === 'skip') process.stderr.write(`collector-tier.test.ts: skipping binary checks: ${tierBin.reason}\n`);

describe.skipIf(policy === 'skip')('the built Collector tier', () => {
  const bin = (): string => {
    if (!tierBin.path) throw new Error(`CI requires the Collector tier binary: ${tierBin.reason}`);
    return tierBin.path;
  };
  afterAll(killStarted);

  it('contains exactly the manifest components, at the tier release', async () => {
    expect(await binaryTypes(bin())).toEqual(manifestTypes(manifest));
    const version = await run(bin(), ['--version']);
    expect(version.stdout).toContain(`version ${TIER_VERSION}`);
  });

  for (const file of CONFIGS) {
    it(`validates ${file} without deprecation warnings`, async () => {
      const result = await run(bin(), ['validate', '--config', file]);
      expect(result.code, result.stderr).toBe(0);
      expect(`${result.stdout}${result.stderr}`.toLowerCase()).not.toContain('deprecat');
    });

    it(`starts as ${file} on loopback: health check answers, own metrics are served, the log has no deprecation or error`, async () => {
      const { env: loopback, health, metrics, spare: [unused1, unused2] } = await loopbackCollector();
      const env = {
        ...process.env,
        ...loopback,
        // Nothing listens there: the Collector must still start (exports are queued and retried).
        OTELCOL_GATEWAYS: `[127.0.0.1:${unused1}, 127.0.0.1:${unused2}]`,
        TRACES_OTLP_GRPC_ENDPOINT: `127.0.0.1:${unused1}`,
        OTELCOL_GATEWAY_ID: 'gateway-test',
      };
      const { healthy, metrics: body, log } = await startAndStop(bin(), file, env, health, metrics);
      expect(healthy, `health check never answered; log:\n${log}`).toBe(true);
      expect(body).toMatch(/^otelcol_process_uptime_seconds_total\b/m);
      expect(log.toLowerCase(), log).not.toContain('deprecat');
      expect(log, log).not.toMatch(/\terror\t/);
    }, 40_000);
  }
});
