/**
 * A lean loopback HTTP client for the benchmarks: node:http with keep-alive (fetch/undici costs more
 * CPU per request, and on a 2-core machine the client's CPU is taken from the engine under test).
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';

/** The key every benchmark engine is configured with (SWITCHYARD_API_KEYS) and every request sends: auth is part of what is measured. */
export const BENCH_API_KEY = 'bench-key-0123456789abcdef';

export interface HttpResult {
  readonly status: number;
  readonly body: string;
  /** performance.now() when the last byte of the response arrived. */
  readonly endedAt: number;
  readonly ms: number;
}

export function createAgent(maxSockets: number): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
}

export function request(options: {
  agent?: http.Agent; port: number; method?: string; path: string; body?: string; timeoutMs?: number;
}): Promise<HttpResult> {
  const began = performance.now();
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { authorization: `Bearer ${BENCH_API_KEY}` };
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(options.body);
    }
    const req = http.request({
      host: '127.0.0.1', port: options.port, method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
      path: options.path, agent: options.agent ?? false, headers,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const endedAt = performance.now();
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), endedAt, ms: endedAt - began });
      });
      res.on('error', reject);
    });
    req.setTimeout(options.timeoutMs ?? 30_000, () => req.destroy(new Error(`request timed out after ${options.timeoutMs ?? 30_000} ms`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

export interface ClosedLoopOptions {
  readonly port: number;
  readonly path: string;
  readonly body: (n: number) => string;
  readonly concurrency: number;
  /** Both bounds apply: the loop stops at whichever comes first. */
  readonly durationMs: number;
  readonly maxRequests: number;
  readonly agent?: http.Agent;
  /** Called with every completed response (for per-request checks). */
  readonly onResponse?: (result: HttpResult) => void;
}

export interface ClosedLoopResult {
  readonly completed: number;
  readonly ok: number;
  readonly errors: number;
  readonly byStatus: Record<string, number>;
  readonly latenciesMs: number[];
  readonly elapsedMs: number;
  /** Successful (2xx) responses per second over the whole run. */
  readonly perSecond: number;
}

/**
 * Closed loop at fixed concurrency: `concurrency` workers each send a request, wait for its response,
 * and send the next, until the time or count bound. Every request is synchronous from the client's view.
 */
export async function closedLoop(options: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const agent = options.agent ?? createAgent(options.concurrency);
  const latencies: number[] = [];
  const byStatus: Record<string, number> = {};
  let issued = 0;
  let ok = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;
  const worker = async () => {
    while (performance.now() < deadline && issued < options.maxRequests) {
      const n = issued++;
      try {
        const result = await request({ agent, port: options.port, path: options.path, body: options.body(n) });
        byStatus[result.status] = (byStatus[result.status] ?? 0) + 1;
        latencies.push(result.ms);
        if (result.status >= 200 && result.status < 300) ok++;
        options.onResponse?.(result);
      } catch {
        errors++;
        byStatus.error = (byStatus.error ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const elapsedMs = performance.now() - started;
  if (!options.agent) agent.destroy();
  return { completed: latencies.length, ok, errors, byStatus, latenciesMs: latencies, elapsedMs, perSecond: ok / (elapsedMs / 1000) };
}
