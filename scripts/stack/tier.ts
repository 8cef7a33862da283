/**
 * The Collector tier on 127.0.0.1, without Docker: the real agent Collector (collector/agent.yaml), N real
 * gateway Collectors (collector/gateway.yaml), all from the tier binary (OTELCOL_TIER_BIN, built from
 * collector/builder-tier.yaml), and the real Jaeger v2 (harness/jaeger.yaml) as the trace store behind
 * the gateways. The config files are the committed ones, configured by environment only: ports, the agent's
 * gateway list, each gateway's id, and the tail sampling knobs the test passes.
 *
 * Processes are started and reaped as in stack.ts (processes.ts: own process groups, a reaper).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JaegerClient, isOk, until } from './clients.ts';
import { ManagedProcess, freePort, killAllSync, startReaper, stopReaper } from './processes.ts';
import { REPO, jaegerProcess, type JaegerPorts } from './stack.ts';

export interface TierOptions {
  readonly otelcolTier: string;
  readonly jaeger: string;
  readonly gateways: number;
  /** Extra environment of every gateway (tail sampling knobs: OTELCOL_TAIL_DECISION_WAIT, ...). */
  readonly gatewayEnv?: Record<string, string>;
  readonly readyTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

export interface TierCollector {
  readonly process: ManagedProcess;
  readonly otlpGrpc: number;
  readonly otlpHttp: number;
  readonly health: number;
  readonly metrics: number;
  /** OTELCOL_GATEWAY_ID of a gateway (undefined for the agent). */
  readonly id?: string;
}

/** One sample of the Prometheus text exposition format. */
export interface MetricSample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** Parses Prometheus text exposition (what the Collectors serve on /metrics); comments skipped. */
export function parseMetrics(text: string): MetricSample[] {
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const l of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

export class CollectorTier {
  readonly dir: string;
  readonly agent: TierCollector;
  readonly gateways: readonly TierCollector[];
  readonly jaeger: ManagedProcess;
  readonly jaegerPorts: JaegerPorts;
  readonly traces: JaegerClient;
  readonly #log: (line: string) => void;
  readonly #readyTimeoutMs: number;

  private constructor(dir: string, agent: TierCollector, gateways: TierCollector[], jaeger: ManagedProcess,
    jaegerPorts: JaegerPorts, options: TierOptions) {
    this.dir = dir;
    this.agent = agent;
    this.gateways = gateways;
    this.jaeger = jaeger;
    this.jaegerPorts = jaegerPorts;
    this.traces = new JaegerClient(`http://127.0.0.1:${jaegerPorts.queryHttp}`);
    this.#log = options.log ?? ((line) => process.stderr.write(`[tier] ${line}\n`));
    this.#readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
  }

  /** Starts Jaeger, then the gateways, then the agent (receivers before their senders); waits for each. */
  static async start(options: TierOptions): Promise<CollectorTier> {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-tier-'));
    mkdirSync(join(dir, 'logs'));
    startReaper(dir);
    const log = (name: string) => join(dir, 'logs', `${name}.log`);
    const jaegerPorts: JaegerPorts = { queryHttp: await freePort(), queryGrpc: await freePort(), health: await freePort(), otlpGrpc: await freePort() };
    const jaeger = jaegerProcess(options.jaeger, log('jaeger'), jaegerPorts);

    const collector = async (name: string, config: string, env: Record<string, string>, id?: string): Promise<TierCollector> => {
      const ports = { otlpGrpc: await freePort(), otlpHttp: await freePort(), health: await freePort(), metrics: await freePort() };
      const proc = new ManagedProcess({
        name, command: options.otelcolTier, logFile: log(name),
        args: ['--config', join(REPO, 'collector', config)],
        env: {
          ...process.env,
          OTLP_GRPC_ENDPOINT: `127.0.0.1:${ports.otlpGrpc}`,
          OTLP_HTTP_ENDPOINT: `127.0.0.1:${ports.otlpHttp}`,
          OTELCOL_HEALTH_ENDPOINT: `127.0.0.1:${ports.health}`,
          OTELCOL_METRICS_HOST: '127.0.0.1',
          OTELCOL_METRICS_PORT: String(ports.metrics),
          ...env,
        },
      });
      return { process: proc, ...ports, ...(id === undefined ? {} : { id }) };
    };

    const gateways: TierCollector[] = [];
    for (let i = 1; i <= options.gateways; i++) {
      const id = `gateway-${i}`;
      gateways.push(await collector(id, 'gateway.yaml', {
        OTELCOL_GATEWAY_ID: id,
        TRACES_OTLP_GRPC_ENDPOINT: `127.0.0.1:${jaegerPorts.otlpGrpc}`,
        ...options.gatewayEnv,
      }, id));
    }
    const agent = await collector('agent', 'agent.yaml', {
      // A YAML list: the whole value of `hostnames` in agent.yaml.
      OTELCOL_GATEWAYS: `[${gateways.map((g) => `127.0.0.1:${g.otlpGrpc}`).join(', ')}]`,
    });

    const tier = new CollectorTier(dir, agent, gateways, jaeger, jaegerPorts, options);
    try {
      await tier.#startAndWait(jaeger, `http://127.0.0.1:${jaegerPorts.health}/status`);
      for (const g of gateways) await tier.#startAndWait(g.process, `http://127.0.0.1:${g.health}/`);
      await tier.#startAndWait(agent.process, `http://127.0.0.1:${agent.health}/`);
    } catch (error) {
      tier.#log(`start failed: ${(error as Error).message}\n${tier.tails()}`);
      await tier.stop();
      throw error;
    }
    return tier;
  }

  async #startAndWait(proc: ManagedProcess, url: string): Promise<void> {
    const started = Date.now();
    proc.start();
    await until(async () => {
      if (!proc.alive) throw new Error(`${proc.name} exited (${proc.exitInfo ?? '?'}) before it was ready:\n${proc.tail(20)}`);
      return (await isOk(url)) ? true : undefined;
    }, { timeoutMs: this.#readyTimeoutMs, intervalMs: 250, what: `${proc.name} ready at ${url}` });
    this.#log(`${proc.name} ready in ${Date.now() - started} ms (pid ${proc.pid})`);
  }

  /** OTLP/HTTP traces endpoint of the agent. */
  get agentTracesUrl(): string {
    return `http://127.0.0.1:${this.agent.otlpHttp}/v1/traces`;
  }

  /** The Collector's own metrics (its /metrics page), parsed. */
  async metrics(c: TierCollector): Promise<MetricSample[]> {
    const response = await fetch(`http://127.0.0.1:${c.metrics}/metrics`, { signal: AbortSignal.timeout(10_000) });
    if (!response.ok) throw new Error(`${c.process.name} /metrics: ${response.status}`);
    return parseMetrics(await response.text());
  }

  /** Sum of the samples named `name` whose labels include `labels`. */
  async metricSum(c: TierCollector, name: string, labels: Record<string, string> = {}): Promise<number> {
    return (await this.metrics(c))
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0);
  }

  allProcesses(): ManagedProcess[] {
    return [this.agent.process, ...this.gateways.map((g) => g.process), this.jaeger];
  }

  tails(lines = 25): string {
    return this.allProcesses()
      .map((p) => `--- ${p.name} (${p.alive ? `pid ${p.pid}` : p.exitInfo ?? 'not started'}) ${p.spec.logFile} ---\n${p.tail(lines)}`)
      .join('\n');
  }

  /** Stops the agent, the gateways, then Jaeger; removes the directory unless `keep`. */
  async stop(options: { keep?: boolean } = {}): Promise<void> {
    for (const proc of this.allProcesses()) await proc.stop(8_000).catch(() => undefined);
    killAllSync();
    stopReaper();
    if (options.keep) this.#log(`kept ${this.dir}`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}
