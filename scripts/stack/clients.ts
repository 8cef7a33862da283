/**
 * Small HTTP clients for what the stack tests ask the real components: Prometheus (instant queries,
 * series, exemplars, alerts), the trace store (Jaeger: traces by id, search), the pager sink, and a deadline-based
 * poller (no fixed sleeps: a loaded 2-core machine is slow, never wrong).
 */
import { setTimeout as sleep } from 'node:timers/promises';

export async function getJson<T = any>(url: string, init?: RequestInit & { timeoutMs?: number }): Promise<T> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(init?.timeoutMs ?? 15_000) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: ${response.status} ${text.slice(0, 500)}`);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`${url}: not JSON: ${text.slice(0, 200)}`);
  }
}

/** A response body as JSON when it is JSON, else as text (problem+json, plain errors). */
export async function bodyOf(response: Response): Promise<any> {
  const text = await response.text();
  return text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text;
}

/** HTTP 200 from `url` (readiness probes); false on any error. */
export async function isOk(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(3_000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

export interface PollOptions {
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  /** What is awaited, for the error message. */
  readonly what: string;
}

/**
 * Calls `probe` until it returns something other than undefined (errors count as "not yet"); throws
 * after the deadline with the last value or error.
 */
export async function until<T>(probe: () => Promise<T | undefined> | T | undefined, options: PollOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      last = 'no value yet';
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}; last: ${detail?.slice(0, 2000)}`);
    }
    await sleep(options.intervalMs ?? 1_000);
  }
}

export interface PromSample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

export interface PromExemplarSeries {
  readonly seriesLabels: Record<string, string>;
  readonly exemplars: readonly { labels: Record<string, string>; value: string; timestamp: number }[];
}

export interface PromAlert {
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly state: 'pending' | 'firing' | 'inactive';
  readonly activeAt: string;
  readonly value: string;
}

export class PrometheusClient {
  readonly url: string;
  constructor(url: string) {
    this.url = url;
  }

  async #api<T>(path: string, params: Record<string, string>): Promise<T> {
    const body = new URLSearchParams(params);
    const response = await getJson<{ status: string; data: T; error?: string }>(`${this.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    if (response.status !== 'success') throw new Error(`${path} ${JSON.stringify(params)}: ${response.error ?? response.status}`);
    return response.data;
  }

  /** Instant query; returns vector samples (scalars come back as one sample with no labels). */
  async query(expr: string, time?: number): Promise<PromSample[]> {
    const data = await this.#api<{ resultType: string; result: any }>('/api/v1/query', {
      query: expr,
      ...(time === undefined ? {} : { time: String(time) }),
    });
    if (data.resultType === 'scalar' || data.resultType === 'string') return [{ metric: {}, value: data.result }];
    if (data.resultType === 'matrix') {
      return (data.result as { metric: Record<string, string>; values: [number, string][] }[])
        .filter((s) => s.values.length > 0)
        .map((s) => ({ metric: s.metric, value: s.values[s.values.length - 1]! }));
    }
    return data.result as PromSample[];
  }

  /** Sum of an instant query's values (0 when empty). */
  async scalar(expr: string): Promise<number> {
    const samples = await this.query(expr);
    return samples.reduce((sum, s) => sum + Number(s.value[1]), 0);
  }

  async queryRange(expr: string, startS: number, endS: number, stepS: number): Promise<{ metric: Record<string, string>; values: [number, string][] }[]> {
    const data = await this.#api<{ result: { metric: Record<string, string>; values: [number, string][] }[] }>('/api/v1/query_range', {
      query: expr, start: String(startS), end: String(endS), step: String(stepS),
    });
    return data.result;
  }

  async series(match: string, startS?: number): Promise<Record<string, string>[]> {
    return this.#api<Record<string, string>[]>('/api/v1/series', {
      'match[]': match,
      ...(startS === undefined ? {} : { start: String(startS) }),
    });
  }

  async exemplars(expr: string, startS: number, endS: number): Promise<PromExemplarSeries[]> {
    return this.#api<PromExemplarSeries[]>('/api/v1/query_exemplars', { query: expr, start: String(startS), end: String(endS) });
  }

  async alerts(): Promise<PromAlert[]> {
    const data = await getJson<{ data: { alerts: PromAlert[] } }>(`${this.url}/api/v1/alerts`);
    return data.data.alerts;
  }

  async firing(): Promise<PromAlert[]> {
    return (await this.alerts()).filter((a) => a.state === 'firing');
  }

  async ruleHealth(): Promise<{ name: string; health: string; lastError?: string }[]> {
    const data = await getJson<{ data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] } }>(`${this.url}/api/v1/rules`);
    return data.data.groups.flatMap((g) => g.rules);
  }
}

/** OTLP JSON carries ids as hex (Jaeger's API v3) or base64 (proto JSON); this gives lower-case hex. */
export function idToHex(id: string | undefined): string {
  if (!id) return '';
  if (/^[0-9a-f]+$/i.test(id) && (id.length === 32 || id.length === 16)) return id.toLowerCase();
  return Buffer.from(id, 'base64').toString('hex');
}

export interface TraceSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: string | number;
  readonly service: string;
  readonly durationMs: number;
  readonly attributes: Record<string, string | number | boolean>;
  /** OTLP status code: 0/unset, 1/ok, 2/error (numbers or STATUS_CODE_* names). */
  readonly status: { code?: string | number };
}

function attributeValue(value: Record<string, unknown> | undefined): string | number | boolean {
  if (!value) return '';
  if ('stringValue' in value) return String(value['stringValue']);
  if ('intValue' in value) return Number(value['intValue']);
  if ('doubleValue' in value) return Number(value['doubleValue']);
  if ('boolValue' in value) return Boolean(value['boolValue']);
  return JSON.stringify(value);
}

function attributes(list: unknown): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const a of (Array.isArray(list) ? list : []) as { key: string; value: Record<string, unknown> }[]) out[a.key] = attributeValue(a.value);
  return out;
}

/** The spans of OTLP JSON `resourceSpans`, flattened. */
function spansOf(resourceSpans: unknown): TraceSpan[] {
  const spans: TraceSpan[] = [];
  for (const batch of (Array.isArray(resourceSpans) ? resourceSpans : []) as { resource?: { attributes?: unknown }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[]) {
    const service = String(attributes(batch.resource?.attributes)['service.name'] ?? '');
    for (const scope of batch.scopeSpans ?? []) {
      for (const s of scope.spans ?? []) {
        spans.push({
          traceId: idToHex(s['traceId'] as string),
          spanId: idToHex(s['spanId'] as string),
          parentSpanId: idToHex(s['parentSpanId'] as string | undefined),
          name: String(s['name']),
          kind: s['kind'] as string,
          service,
          durationMs: Number(BigInt(String(s['endTimeUnixNano'] ?? 0)) - BigInt(String(s['startTimeUnixNano'] ?? 0))) / 1e6,
          attributes: attributes(s['attributes']),
          status: (s['status'] ?? {}) as { code?: string },
        });
      }
    }
  }
  return spans;
}

/** True for an OTLP error status, whichever way the JSON spells it. */
export const isErrorStatus = (status: TraceSpan['status']): boolean => status.code === 2 || status.code === 'STATUS_CODE_ERROR';

export interface TraceSearch {
  readonly service: string;
  readonly spanName: string;
  readonly minDurationMs?: number;
  readonly startS: number;
  readonly endS: number;
  readonly limit?: number;
}

/** Jaeger v2's query service, HTTP API v3 (OTLP JSON). */
export class JaegerClient {
  readonly url: string;
  constructor(url: string) {
    this.url = url;
  }

  /** The spans of a trace; undefined when Jaeger does not know the trace (404). */
  async trace(traceId: string): Promise<TraceSpan[] | undefined> {
    const response = await fetch(`${this.url}/api/v3/traces/${traceId}`, { signal: AbortSignal.timeout(30_000) });
    const text = await response.text();
    if (response.status === 404) return undefined;
    if (!response.ok) throw new Error(`GET /api/v3/traces/${traceId}: ${response.status} ${text.slice(0, 300)}`);
    return spansOf((JSON.parse(text) as { result?: { resourceSpans?: unknown } }).result?.resourceSpans);
  }

  /**
   * Traces with a span of `service` named `spanName` lasting at least `minDurationMs`, started in
   * [startS, endS]; each trace with all its spans. Jaeger matches all conditions on one span, as TraceQL's
   * `{ name = ... && duration > ... }` does.
   */
  async search(q: TraceSearch): Promise<Map<string, TraceSpan[]>> {
    const params = new URLSearchParams({
      'query.service_name': q.service,
      'query.operation_name': q.spanName,
      'query.start_time_min': new Date(q.startS * 1000).toISOString(),
      'query.start_time_max': new Date(q.endS * 1000).toISOString(),
      'query.num_traces': String(q.limit ?? 20),
      ...(q.minDurationMs === undefined ? {} : { 'query.duration_min': `${q.minDurationMs}ms` }),
    });
    const response = await fetch(`${this.url}/api/v3/traces?${params}`, { signal: AbortSignal.timeout(30_000) });
    const text = await response.text();
    const traces = new Map<string, TraceSpan[]>();
    if (response.status === 404) return traces; // "trace not found": nothing matched
    if (!response.ok) throw new Error(`GET /api/v3/traces?${params}: ${response.status} ${text.slice(0, 300)}`);
    for (const span of spansOf((JSON.parse(text) as { result?: { resourceSpans?: unknown } }).result?.resourceSpans)) {
      traces.set(span.traceId, [...(traces.get(span.traceId) ?? []), span]);
    }
    return traces;
  }
}

/** One log record as VictoriaLogs returns it: every field a string (_msg, _time, _stream, trace_id, span_id, ...). */
export type LogRecord = Readonly<Record<string, string>>;

/** VictoriaLogs' LogsQL HTTP API (the stack tests' log store; users run Loki). */
export class VictoriaLogsClient {
  readonly url: string;
  constructor(url: string) {
    this.url = url;
  }

  /** The records a LogsQL query matches (POST /select/logsql/query answers one JSON object per line). */
  async query(logsql: string, limit = 1000): Promise<LogRecord[]> {
    const response = await fetch(`${this.url}/select/logsql/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: logsql, limit: String(limit) }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`LogsQL ${logsql}: ${response.status} ${text.slice(0, 300)}`);
    return text.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as LogRecord);
  }
}

export interface Page {
  readonly seq: number;
  readonly receiver: string;
  readonly receivedAt: string;
  readonly payload: {
    readonly status: string;
    readonly receiver?: string;
    readonly alerts: readonly { status: string; startsAt?: string; labels: Record<string, string>; annotations: Record<string, string> }[];
  };
}

export class PagerSinkClient {
  readonly url: string;
  constructor(url: string) {
    this.url = url;
  }

  /** Pages received, oldest first; `since`: only those with a greater sequence number. */
  async pages(filter: { receiver?: string; alertname?: string; status?: string; since?: number } = {}): Promise<Page[]> {
    const params = new URLSearchParams(Object.entries(filter).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)] as [string, string]));
    const body = await getJson<{ pages: Page[] }>(`${this.url}/pages?${params}`);
    return body.pages;
  }

  /** Sequence number of the last page received (0 when none): pass it as `since` to see only newer pages. */
  async lastSeq(): Promise<number> {
    return (await this.pages()).reduce((max, page) => Math.max(max, page.seq), 0);
  }
}
