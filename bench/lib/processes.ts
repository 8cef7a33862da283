/**
 * Real processes for the benchmarks: the Collector (pinned binary, bench/otelcol-bench.yaml), a sink
 * standing in for its backends, and engine processes started exactly as `npm start` does.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { BENCH_API_KEY, request } from './http.ts';

export const REPO = resolve(import.meta.dirname, '..', '..');

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolvePort(port));
    });
  });
}

/** Resident set size of a process in bytes (VmRSS), or NaN when it is gone. */
export function rssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** CPU time (user + system, ms) a process has used so far, from /proc/<pid>/stat; NaN when it is gone. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[11] = utime, fields[12] = stime (in clock ticks; 100 Hz on Linux).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

async function stop(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Accepts any OTLP/HTTP request and answers 200 with an empty (valid) protobuf response. */
export interface Sink {
  readonly url: string;
  readonly stats: { requests: number; bytes: number };
  close(): Promise<void>;
}

export async function startSink(): Promise<Sink> {
  const stats = { requests: 0, bytes: 0 };
  const server = http.createServer((req, res) => {
    req.on('data', (chunk: Buffer) => {
      stats.bytes += chunk.length;
    });
    req.on('end', () => {
      stats.requests++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 });
      res.end();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    close: () => new Promise<void>((done) => {
      server.closeAllConnections();
      server.close(() => done());
    }),
  };
}

export interface Collector {
  readonly otlpEndpoint: string;
  readonly pid: number;
  readonly binary: string;
  readonly version: string;
  readonly sink: Sink;
  close(): Promise<void>;
}

/** The Collector binary: OTELCOL_BIN, else what scripts/stack-binaries.sh builds (or already built). */
export function collectorBinary(): string {
  if (process.env.OTELCOL_BIN) return process.env.OTELCOL_BIN;
  const script = join(REPO, 'scripts', 'stack-binaries.sh');
  for (const args of [['--no-build'], []]) {
    // Quiet when only looking; the build's progress shows.
    const run = spawnSync('bash', [script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', args.length ? 'ignore' : 'inherit'] });
    const bin = /OTELCOL_BIN=(\S+)/.exec(run.stdout ?? '')?.[1];
    // --no-build exits 3 when some binary of the stack is missing; the Collector may still be there.
    if (bin && existsSync(bin)) return bin;
  }
  throw new Error('the OpenTelemetry Collector binary is missing: run scripts/stack-binaries.sh or set OTELCOL_BIN');
}

export async function startCollector(binary = collectorBinary()): Promise<Collector> {
  const sink = await startSink();
  const [otlpPort, healthPort] = [await freePort(), await freePort()];
  const version = spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const child = spawn(binary, ['--config', join(REPO, 'bench', 'otelcol-bench.yaml')], {
    env: {
      PATH: process.env.PATH, HOME: process.env.HOME,
      BENCH_OTLP_HTTP_ENDPOINT: `127.0.0.1:${otlpPort}`,
      BENCH_OTELCOL_HEALTH_ENDPOINT: `127.0.0.1:${healthPort}`,
      BENCH_SINK_ENDPOINT: sink.url,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    if (stderr.length < 20_000) stderr += chunk.toString();
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the Collector exited with ${child.exitCode}: ${stderr}`);
    try {
      if ((await request({ port: healthPort, path: '/', timeoutMs: 1_000 })).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop(child);
      throw new Error(`the Collector was not healthy within 30 s: ${stderr}`);
    }
    await sleep(50);
  }
  return {
    otlpEndpoint: `http://127.0.0.1:${otlpPort}`, pid: child.pid!, binary, version, sink,
    async close() {
      await stop(child);
      await sink.close();
    },
  };
}

export interface EngineProcess {
  readonly port: number;
  readonly pid: number;
  readonly telemetry: boolean;
  /** From spawn to the first 200 of /readyz. */
  readonly readyMs: number;
  rss(): number;
  cpuMs(): number;
  stop(): Promise<void>;
}

export interface EngineProcessOptions {
  readonly telemetry: boolean;
  /** OTLP endpoint of the Collector (required when telemetry is on). */
  readonly otlpEndpoint?: string;
  readonly env?: Record<string, string>;
  /** Extra node flags (e.g. --cpu-prof). */
  readonly nodeArgs?: readonly string[];
}

/**
 * Starts `node src/main.ts` (what `npm start` runs) with a
 * fresh embedded store in a temporary directory, and waits for /readyz.
 */
export async function startEngine(options: EngineProcessOptions): Promise<EngineProcess> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-'));
  const env: Record<string, string> = {};
  // The engine sees no OTEL_* or SWITCHYARD_* of the caller: only what this benchmark sets.
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('OTEL_') && !key.startsWith('SWITCHYARD_') && key !== 'NODE_OPTIONS') env[key] = value;
  }
  Object.assign(env, {
    SWITCHYARD_HOST: '127.0.0.1',
    SWITCHYARD_PORT: String(port),
    SWITCHYARD_API_KEYS: `bench ${BENCH_API_KEY}`,
    SWITCHYARD_PROJECT_DIR: join(REPO, 'examples'),
    SWITCHYARD_DB: join(dir, 'switchyard.db'),
    SWITCHYARD_LOG_LEVEL: 'warn',
    SWITCHYARD_INSTANCE_ID: `bench-${options.telemetry ? 'on' : 'off'}-${port}`,
  });
  if (options.telemetry) {
    if (!options.otlpEndpoint) throw new Error('telemetry on needs the Collector endpoint');
    Object.assign(env, {
      OTEL_EXPORTER_OTLP_ENDPOINT: options.otlpEndpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      // As docker-compose.yml runs the engine: metrics every 10 s, log records to the Collector's logs pipeline.
      OTEL_METRIC_EXPORT_INTERVAL: '10000',
    });
  } else {
    env.OTEL_SDK_DISABLED = 'true';
  }
  Object.assign(env, options.env ?? {});
  const began = performance.now();
  // As npm start runs it: telemetry's register hook first (OTEL_SDK_DISABLED=true makes it load nothing).
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', './src/telemetry/register.ts', 'src/main.ts'], {
    cwd: REPO, env, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    if (stderr.length < 20_000) stderr += chunk.toString();
  });
  let readyMs = Number.NaN;
  const deadline = Date.now() + 30_000;
  while (Number.isNaN(readyMs)) {
    if (child.exitCode !== null) throw new Error(`the engine exited with ${child.exitCode}: ${stderr}`);
    try {
      const response = await request({ port, path: '/readyz', timeoutMs: 2_000 });
      if (response.status === 200) readyMs = performance.now() - began;
    } catch {
      // not listening yet
    }
    if (Number.isNaN(readyMs)) {
      if (Date.now() > deadline) {
        await stop(child);
        throw new Error(`the engine was not ready within 30 s: ${stderr}`);
      }
      await sleep(5);
    }
  }
  return {
    port, pid: child.pid!, telemetry: options.telemetry, readyMs,
    rss: () => rssBytes(child.pid!),
    cpuMs: () => cpuMs(child.pid!),
    async stop() {
      await stop(child, 15_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
