/**
 * The Switchyard stack on 127.0.0.1, without Docker: the real Collector, Prometheus, Alertmanager, a
 * real trace store and a real log store (binaries from scripts/stack-binaries.sh) running the repository's
 * config files, the pager sink, and engine processes started exactly as `npm start` does. The trace store
 * is Jaeger v2 (Apache-2.0, in memory, config harness/jaeger.yaml): Tempo, what docker compose runs for
 * users, is AGPL and is never built here; tempo/tempo.yaml is checked statically by
 * test/config/tempo.test.ts. The log store is VictoriaLogs (Apache-2.0; OTLP logs in, LogsQL out) for the
 * same reason: compose runs Loki, AGPL, whose loki/loki.yaml test/config/loki.test.ts checks statically.
 *
 * Everything lives in one temporary directory: data directories, logs (logs/<component>.log) and the
 * Prometheus layout of prometheus/README.md. What is not the committed file verbatim, and why:
 *   - prometheus/prometheus.yml: a copy with scrape_interval/evaluation_interval 15s -> 5s (and
 *     scrape_timeout 10s -> 4s, which must not exceed the interval). Prometheus 3 has no environment
 *     expansion there; 15 s would make every alert test several times slower. Nothing else changes.
 *   - alerts/rules/*.yml: a copy with every `for:` shortened and the ExecutionsStuck "stack-test
 *     threshold" (1.5 times a run's timeout) lowered, as alerts/README.md allows. Names, labels and annotations untouched.
 *   - alerts/alertmanager.yml: a copy with http://pager-sink:9095 replaced by the harness's pager sink.
 *   - prometheus/rules: a symlink to the committed directory; targets/<job>.json written with our ports.
 *   - collector/otelcol.yaml: the committed file, configured by environment (its trace exporter points
 *     at Jaeger's OTLP/gRPC receiver, its log exporter at VictoriaLogs' OTLP endpoint; span metrics
 *     flushed every 5 s instead of 15 s).
 *   - prometheus targets/tempo.json: an empty list (no Tempo runs here).
 *   - the project: a copy of examples/ (see project.ts) with test-only additions; the model-fault engine
 *     runs a second copy whose hourly budget (prices.yaml) is lowered.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stackBinaries, type StackBinaries } from './binaries.ts';
import { JaegerClient, PagerSinkClient, PrometheusClient, VictoriaLogsClient, bodyOf, isOk, until } from './clients.ts';
import { ManagedProcess, freePort, killAllSync, startReaper, stopReaper } from './processes.ts';
import { overrideAlertRules } from './layout.ts';
import { writeStackProject } from './project.ts';

export const REPO = resolve(import.meta.dirname, '..', '..');

export interface StackOptions {
  /** Root of the temporary directory (default: a new one under the OS temp dir). */
  readonly dir?: string;
  /** Project directory of the engines (default: the test project written by project.ts). */
  readonly projectDir?: string;
  /** Prometheus scrape and rule evaluation interval, e.g. "5s" (committed file: 15s). */
  readonly promInterval?: string;
  /** Replacement of every alert rule's `for:` (e.g. "10s"); undefined keeps the committed durations. */
  readonly alertFor?: string;
  /** ExecutionsStuck threshold, in times a run's own timeout (committed: 1.5). */
  readonly stuckThreshold?: number;
  /** OTELCOL_SPANMETRICS_FLUSH_INTERVAL of the Collector (committed default: 15s). */
  readonly spanMetricsFlushInterval?: string;
  /** OTEL_METRIC_EXPORT_INTERVAL of the engines, in ms. */
  readonly metricExportIntervalMs?: number;
  /** Readiness deadline per component (a loaded 2-core machine is slow to start everything at once). */
  readonly readyTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

export type ComponentName = 'otelcol' | 'prometheus' | 'jaeger' | 'victorialogs' | 'alertmanager' | 'pager-sink';

export interface EngineOptions {
  /** SQLite file; engines given the same file share their executions (and sweep each other's). */
  readonly dbPath?: string;
  /** Its own project directory (default: the stack's), e.g. one with a lowered budget (project.ts). */
  readonly projectDir?: string;
  readonly env?: Record<string, string>;
}

/** The stack's engines require API keys (from a key file, as an operator would configure them). */
export const STACK_API_KEY = 'stack-test-key-0123456789';
/** The load generator's key: its runs are labelled trigger="loadgen". Pass it to runLoad as `apiKey`. */
export const STACK_LOADGEN_KEY = 'stack-loadgen-key-0123456789';

export interface EngineHandle {
  readonly name: string;
  readonly url: string;
  /** STACK_LOADGEN_KEY: what runLoad against this engine must send. */
  readonly loadgenKey: string;
  readonly instanceId: string;
  readonly dbPath: string;
  readonly process: ManagedProcess;
  /** Both send STACK_API_KEY. */
  post(path: string, body?: unknown): Promise<{ status: number; body: any }>;
  get(path: string): Promise<{ status: number; body: any }>;
}

interface Ports {
  otlpGrpc: number;
  otlpHttp: number;
  otelcolHealth: number;
  otelcolMetrics: number;
  prometheus: number;
  jaegerQueryHttp: number;
  jaegerQueryGrpc: number;
  jaegerHealth: number;
  jaegerOtlpGrpc: number;
  victoriaLogs: number;
  alertmanager: number;
  pagerSink: number;
}

export interface JaegerPorts {
  readonly otlpGrpc: number;
  readonly queryHttp: number;
  readonly queryGrpc: number;
  readonly health: number;
}

/** Jaeger v2 with harness/jaeger.yaml on 127.0.0.1 (in memory); ready at http://127.0.0.1:<health>/status. */
export function jaegerProcess(bin: string, logFile: string, ports: JaegerPorts): ManagedProcess {
  return new ManagedProcess({
    name: 'jaeger', command: bin, logFile,
    args: ['--config', join(REPO, 'scripts/stack/jaeger.yaml')],
    env: {
      ...process.env,
      JAEGER_OTLP_GRPC_ENDPOINT: `127.0.0.1:${ports.otlpGrpc}`,
      JAEGER_QUERY_HTTP_ENDPOINT: `127.0.0.1:${ports.queryHttp}`,
      JAEGER_QUERY_GRPC_ENDPOINT: `127.0.0.1:${ports.queryGrpc}`,
      JAEGER_HEALTH_ENDPOINT: `127.0.0.1:${ports.health}`,
    },
  });
}

function replaceChecked(text: string, pattern: RegExp, replacement: string, what: string): string {
  if (!pattern.test(text)) throw new Error(`stack harness: ${what} not found (pattern ${pattern}); did the committed file change?`);
  return text.replace(pattern, replacement);
}

export class Stack {
  readonly dir: string;
  readonly ports: Ports;
  readonly bins: StackBinaries;
  readonly projectDir: string;
  readonly prom: PrometheusClient;
  readonly traces: JaegerClient;
  readonly logs: VictoriaLogsClient;
  readonly pager: PagerSinkClient;
  readonly components: Record<ComponentName, ManagedProcess>;
  readonly engines = new Map<string, EngineHandle>();
  readonly options: StackOptions;
  readonly #log: (line: string) => void;
  #engineCount = 0;

  private constructor(dir: string, ports: Ports, bins: StackBinaries, options: StackOptions, projectDir: string) {
    this.dir = dir;
    this.ports = ports;
    this.bins = bins;
    this.options = options;
    this.projectDir = projectDir;
    this.#log = options.log ?? ((line) => process.stderr.write(`[stack] ${line}\n`));
    this.prom = new PrometheusClient(`http://127.0.0.1:${ports.prometheus}`);
    this.traces = new JaegerClient(`http://127.0.0.1:${ports.jaegerQueryHttp}`);
    this.logs = new VictoriaLogsClient(`http://127.0.0.1:${ports.victoriaLogs}`);
    this.pager = new PagerSinkClient(`http://127.0.0.1:${ports.pagerSink}`);
    this.components = this.#specs();
  }

  /** Writes the layout, starts every component and waits for each to be ready (no engine yet). */
  static async start(options: StackOptions = {}): Promise<Stack> {
    const bins = stackBinaries();
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'switchyard-stack-'));
    for (const sub of ['logs', 'data/prometheus', 'data/otelcol', 'data/alertmanager', 'data/victorialogs', 'data/engines']) {
      mkdirSync(join(dir, sub), { recursive: true });
    }
    startReaper(dir);
    const ports: Ports = {
      otlpGrpc: await freePort(), otlpHttp: await freePort(), otelcolHealth: await freePort(), otelcolMetrics: await freePort(),
      prometheus: await freePort(),
      jaegerQueryHttp: await freePort(), jaegerQueryGrpc: await freePort(), jaegerHealth: await freePort(), jaegerOtlpGrpc: await freePort(),
      victoriaLogs: await freePort(), alertmanager: await freePort(), pagerSink: await freePort(),
    };
    const projectDir = options.projectDir ?? writeStackProject(join(dir, 'project'));
    const stack = new Stack(dir, ports, bins, options, projectDir);
    stack.#writeConfigs();
    try {
      // Receivers first: pager sink <- Alertmanager <- Prometheus, and the trace and log stores before
      // the Collector that sends to them.
      for (const name of ['pager-sink', 'alertmanager', 'jaeger', 'victorialogs', 'prometheus', 'otelcol'] as const) {
        await stack.startComponent(name);
      }
    } catch (error) {
      stack.#log(`start failed: ${(error as Error).message}\n${stack.tails()}`);
      await stack.stop();
      throw error;
    }
    return stack;
  }

  get otlpHttpEndpoint(): string {
    return `http://127.0.0.1:${this.ports.otlpHttp}`;
  }

  get urls(): Record<string, string> {
    return {
      prometheus: this.prom.url,
      traces: this.traces.url,
      logs: this.logs.url,
      alertmanager: `http://127.0.0.1:${this.ports.alertmanager}`,
      pagerSink: `${this.pager.url}/pages`,
      collectorOtlpHttp: this.otlpHttpEndpoint,
      collectorOtlpGrpc: `127.0.0.1:${this.ports.otlpGrpc}`,
      collectorMetrics: `http://127.0.0.1:${this.ports.otelcolMetrics}/metrics`,
      ...Object.fromEntries([...this.engines].map(([name, e]) => [`engine ${name}`, e.url])),
    };
  }

  #writeConfigs(): void {
    const promDir = join(this.dir, 'prometheus');
    mkdirSync(join(promDir, 'targets'), { recursive: true });
    let promYml = readFileSync(join(REPO, 'prometheus/prometheus.yml'), 'utf8');
    const interval = this.options.promInterval;
    if (interval) {
      promYml = replaceChecked(promYml, /^(\s+scrape_interval: )15s$/m, `$1${interval}`, 'scrape_interval: 15s');
      promYml = replaceChecked(promYml, /^(\s+evaluation_interval: )15s$/m, `$1${interval}`, 'evaluation_interval: 15s');
      // Prometheus refuses a scrape timeout longer than the interval.
      promYml = replaceChecked(promYml, /^(\s+scrape_timeout: )10s$/m, `$1${Math.max(1, parseInt(interval, 10) - 1)}s`, 'scrape_timeout: 10s');
    }
    writeFileSync(join(promDir, 'prometheus.yml'), promYml);
    symlinkSync(join(REPO, 'prometheus/rules'), join(promDir, 'rules'));
    const targets: Record<string, number> = {
      prometheus: this.ports.prometheus,
      'otel-collector': this.ports.otelcolMetrics,
      alertmanager: this.ports.alertmanager,
      'pager-sink': this.ports.pagerSink,
    };
    for (const [job, port] of Object.entries(targets)) {
      writeFileSync(join(promDir, 'targets', `${job}.json`), JSON.stringify([{ targets: [`127.0.0.1:${port}`] }]));
    }
    writeFileSync(join(promDir, 'targets', 'tempo.json'), '[]');

    const alertsDir = join(this.dir, 'alerts', 'rules');
    mkdirSync(alertsDir, { recursive: true });
    const rules = overrideAlertRules(readFileSync(join(REPO, 'alerts/rules/switchyard.yml'), 'utf8'), {
      alertFor: this.options.alertFor, stuckThreshold: this.options.stuckThreshold,
    });
    writeFileSync(join(alertsDir, 'switchyard.yml'), rules);

    const am = readFileSync(join(REPO, 'alerts/alertmanager.yml'), 'utf8');
    if (!am.includes('http://pager-sink:9095')) throw new Error('alerts/alertmanager.yml no longer names http://pager-sink:9095');
    writeFileSync(join(this.dir, 'alertmanager.yml'), am.replaceAll('http://pager-sink:9095', this.pager.url));
  }

  #specs(): Record<ComponentName, ManagedProcess> {
    const p = this.ports;
    const log = (name: string) => join(this.dir, 'logs', `${name}.log`);
    const data = (name: string) => join(this.dir, 'data', name);
    return {
      'pager-sink': new ManagedProcess({
        name: 'pager-sink', command: process.execPath, args: ['src/pager-sink/main.ts'], cwd: REPO, logFile: log('pager-sink'),
        env: { ...process.env, PAGER_SINK_PORT: String(p.pagerSink), PAGER_SINK_HOST: '127.0.0.1' },
      }),
      alertmanager: new ManagedProcess({
        name: 'alertmanager', command: this.bins.alertmanager, logFile: log('alertmanager'),
        args: [`--config.file=${join(this.dir, 'alertmanager.yml')}`, `--storage.path=${data('alertmanager')}`,
          `--web.listen-address=127.0.0.1:${p.alertmanager}`, '--cluster.listen-address='],
      }),
      prometheus: new ManagedProcess({
        name: 'prometheus', command: this.bins.prometheus, logFile: log('prometheus'),
        args: [`--config.file=${join(this.dir, 'prometheus', 'prometheus.yml')}`, `--storage.tsdb.path=${data('prometheus')}`,
          `--web.listen-address=127.0.0.1:${p.prometheus}`, '--web.enable-otlp-receiver', '--web.enable-remote-write-receiver',
          '--enable-feature=exemplar-storage'],
      }),
      jaeger: jaegerProcess(this.bins.jaeger, log('jaeger'), {
        otlpGrpc: p.jaegerOtlpGrpc, queryHttp: p.jaegerQueryHttp, queryGrpc: p.jaegerQueryGrpc, health: p.jaegerHealth,
      }),
      // Its data in the stack's directory; its log keeps warnings and errors only.
      victorialogs: new ManagedProcess({
        name: 'victorialogs', command: this.bins.victorialogs, logFile: log('victorialogs'),
        args: [`-httpListenAddr=127.0.0.1:${p.victoriaLogs}`, `-storageDataPath=${data('victorialogs')}`, '-loggerLevel=WARN'],
      }),
      otelcol: this.collectorProcess({}),
    };
  }

  /** The Collector with its documented environment (extra variables, e.g. memory limits, on top). */
  collectorProcess(extraEnv: Record<string, string>): ManagedProcess {
    const p = this.ports;
    return new ManagedProcess({
      name: 'otelcol', command: this.bins.otelcol, logFile: join(this.dir, 'logs', 'otelcol.log'),
      args: ['--config', join(REPO, 'collector/otelcol.yaml')],
      env: {
        ...process.env,
        OTLP_GRPC_ENDPOINT: `127.0.0.1:${p.otlpGrpc}`,
        OTLP_HTTP_ENDPOINT: `127.0.0.1:${p.otlpHttp}`,
        TRACES_OTLP_GRPC_ENDPOINT: `127.0.0.1:${p.jaegerOtlpGrpc}`,
        OTELCOL_SPANMETRICS_FLUSH_INTERVAL: this.options.spanMetricsFlushInterval ?? '5s',
        PROMETHEUS_HOST: `127.0.0.1:${p.prometheus}`,
        LOGS_OTLP_HTTP_ENDPOINT: `http://127.0.0.1:${p.victoriaLogs}/insert/opentelemetry`,
        OTELCOL_HEALTH_ENDPOINT: `127.0.0.1:${p.otelcolHealth}`,
        OTELCOL_METRICS_HOST: '127.0.0.1',
        OTELCOL_METRICS_PORT: String(p.otelcolMetrics),
        OTELCOL_STORAGE_DIR: join(this.dir, 'data', 'otelcol'),
        ...extraEnv,
      },
    });
  }

  #readyUrl(name: ComponentName): string {
    const p = this.ports;
    switch (name) {
      case 'pager-sink': return `http://127.0.0.1:${p.pagerSink}/healthz`;
      case 'alertmanager': return `http://127.0.0.1:${p.alertmanager}/-/ready`;
      case 'prometheus': return `http://127.0.0.1:${p.prometheus}/-/ready`;
      case 'jaeger': return `http://127.0.0.1:${p.jaegerHealth}/status`;
      case 'victorialogs': return `http://127.0.0.1:${p.victoriaLogs}/health`;
      case 'otelcol': return `http://127.0.0.1:${p.otelcolHealth}/`;
    }
  }

  async #waitReady(proc: ManagedProcess, url: string): Promise<void> {
    const started = Date.now();
    await until(async () => {
      if (!proc.alive) throw new Error(`${proc.name} exited (${proc.exitInfo ?? '?'}) before it was ready:\n${proc.tail(20)}`);
      return (await isOk(url)) ? true : undefined;
    }, { timeoutMs: this.options.readyTimeoutMs ?? 180_000, intervalMs: 250, what: `${proc.name} ready at ${url}` }).catch((error: Error) => {
      // A component that died is not worth waiting for: say so at once.
      throw new Error(`${error.message}\n--- ${proc.name} log ---\n${proc.tail(30)}`);
    });
    this.#log(`${proc.name} ready in ${Date.now() - started} ms (pid ${proc.pid})`);
  }

  async startComponent(name: ComponentName, replacement?: ManagedProcess): Promise<void> {
    if (replacement) this.components[name] = replacement;
    const proc = this.components[name];
    proc.start();
    await this.#waitReady(proc, this.#readyUrl(name));
  }

  async stopComponent(name: ComponentName, graceMs = 15_000): Promise<void> {
    await this.components[name].stop(graceMs);
    this.#log(`${name} stopped (${this.components[name].exitInfo ?? '?'})`);
  }

  /** Starts an engine process (`node src/main.ts`) and waits for /readyz. */
  async startEngine(name: string, options: EngineOptions = {}): Promise<EngineHandle> {
    const port = await freePort();
    const dbPath = options.dbPath ?? join(this.dir, 'data', 'engines', `${name}.db`);
    const instanceId = `${name}-${++this.#engineCount}`;
    const keysFile = join(this.dir, 'api-keys');
    writeFileSync(keysFile, `# id key [trigger]\nstack-test ${STACK_API_KEY}\nloadgen ${STACK_LOADGEN_KEY} trigger=loadgen\n`, { mode: 0o600 });
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (!key.startsWith('OTEL_') && !key.startsWith('SWITCHYARD_')) env[key] = value;
    }
    Object.assign(env, {
      SWITCHYARD_HOST: '127.0.0.1',
      SWITCHYARD_PORT: String(port),
      SWITCHYARD_PROJECT_DIR: options.projectDir ?? this.projectDir,
      SWITCHYARD_DB: dbPath,
      SWITCHYARD_INSTANCE_ID: instanceId,
      SWITCHYARD_ENVIRONMENT: 'stack-test',
      SWITCHYARD_LOG_LEVEL: 'info',
      SWITCHYARD_API_KEYS_FILE: keysFile,
      // The stack tests inject faults through the sample tools' inputs, as the compose demo does.
      SWITCHYARD_TOOL_FAULTS: '1',
      OTEL_EXPORTER_OTLP_ENDPOINT: this.otlpHttpEndpoint,
      OTEL_METRIC_EXPORT_INTERVAL: String(this.options.metricExportIntervalMs ?? 2_000),
      OTEL_BSP_SCHEDULE_DELAY: '1000',
      ...options.env,
    });
    const proc = new ManagedProcess({
      name: `engine-${name}`, command: process.execPath, cwd: REPO, env,
      args: ['--import', './src/telemetry/register.ts', 'src/main.ts'],
      logFile: join(this.dir, 'logs', `engine-${name}.log`),
    });
    proc.start();
    const url = `http://127.0.0.1:${port}`;
    await this.#waitReady(proc, `${url}/readyz`);
    const authorization = `Bearer ${STACK_API_KEY}`;
    const handle: EngineHandle = {
      name, url, instanceId, dbPath, process: proc, loadgenKey: STACK_LOADGEN_KEY,
      async post(path, body) {
        const response = await fetch(url + path, {
          method: 'POST',
          headers: body === undefined ? { authorization } : { 'content-type': 'application/json', authorization },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(120_000),
        });
        return { status: response.status, body: await bodyOf(response) };
      },
      async get(path) {
        const response = await fetch(url + path, { headers: { authorization }, signal: AbortSignal.timeout(30_000) });
        return { status: response.status, body: await bodyOf(response) };
      },
    };
    this.engines.set(name, handle);
    return handle;
  }

  allProcesses(): ManagedProcess[] {
    return [...Object.values(this.components), ...[...this.engines.values()].map((e) => e.process)];
  }

  /** The last lines of every component's log, for a failed test. */
  tails(lines = 25): string {
    return this.allProcesses()
      .map((p) => `--- ${p.name} (${p.alive ? `pid ${p.pid}` : p.exitInfo ?? 'not started'}) ${p.spec.logFile} ---\n${p.tail(lines)}`)
      .join('\n');
  }

  /** Stops engines first (their last export reaches the Collector), then the rest; removes the directory unless `keep`. */
  async stop(options: { keep?: boolean } = {}): Promise<void> {
    await Promise.allSettled([...this.engines.values()].map((e) => e.process.stop(8_000)));
    for (const name of ['otelcol', 'jaeger', 'victorialogs', 'prometheus', 'alertmanager', 'pager-sink'] as const) {
      await this.components[name].stop(8_000).catch(() => undefined);
    }
    killAllSync();
    stopReaper();
    if (options.keep) this.#log(`kept ${this.dir}`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}
