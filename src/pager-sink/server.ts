/**
 * Pager sink: the default Alertmanager receiver of the local stack, so paging works with no account.
 *
 *   POST   /pages/<receiver>  an Alertmanager webhook notification; logged as one JSON line and kept
 *   GET    /pages             received pages, oldest first (?receiver= &alertname= &status= &since=<seq>)
 *   DELETE /pages             forget every page (tests)
 *   GET    /healthz           liveness and readiness
 *   GET    /metrics           Prometheus text exposition of what was received
 *
 * Memory is bounded: the last `maxPages` pages are kept, request bodies are capped, and per-receiver
 * counters fold receivers beyond a small number into "other".
 */
import http from 'node:http';
import { PageStore, type PageFilter, type WebhookAlert, type WebhookPayload } from './store.ts';

export interface PagerSinkOptions {
  /** Pages kept in memory; older ones are evicted. */
  readonly maxPages: number;
  /** Largest accepted request body, in bytes. */
  readonly maxBodyBytes?: number;
  /** Where each received page is logged, one JSON object per call. Defaults to a JSON line on stdout. */
  readonly log?: (entry: Record<string, unknown>) => void;
}

export interface PagerSink {
  readonly server: http.Server;
  readonly store: PageStore;
}

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const RECEIVER_PATTERN = /^[a-zA-Z0-9_.-]{1,64}$/;
const MAX_COUNTED_RECEIVERS = 32;

export function writeJsonLine(entry: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(entry)}\n`);
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** Counters for /metrics, keyed by a bounded set of receivers. */
class Counters {
  readonly pages = new Map<string, number>();
  readonly alerts = new Map<string, number>();
  rejected = 0;

  countPage(receiver: string, alerts: readonly WebhookAlert[]): void {
    const key = this.pages.has(receiver) || this.pages.size < MAX_COUNTED_RECEIVERS ? receiver : 'other';
    this.pages.set(key, (this.pages.get(key) ?? 0) + 1);
    for (const alert of alerts) {
      const status = alert.status === 'resolved' ? 'resolved' : 'firing';
      const alertKey = `${key}\u0000${status}`;
      this.alerts.set(alertKey, (this.alerts.get(alertKey) ?? 0) + 1);
    }
  }
}

export function createPagerSink(options: PagerSinkOptions): PagerSink {
  const store = new PageStore(options.maxPages);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const log = options.log ?? writeJsonLine;
  const counters = new Counters();

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (error instanceof HttpError) {
        if (error.status === 400 || error.status === 413) counters.rejected++;
        sendProblem(res, error.status, error.message);
      } else {
        log({ time: new Date().toISOString(), level: 'error', msg: 'request failed', error: String(error) });
        sendProblem(res, 500, 'internal error');
      }
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://pager-sink.invalid');
    const path = url.pathname;
    const method = req.method ?? 'GET';

    if (path === '/healthz') {
      allow(method, ['GET', 'HEAD']);
      return sendJson(res, 200, { status: 'ok' });
    }
    if (path === '/metrics') {
      allow(method, ['GET']);
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(renderMetrics(store, counters));
      return;
    }
    if (path === '/pages' || path === '/pages/') {
      allow(method, ['GET', 'DELETE']);
      if (method === 'DELETE') {
        store.clear();
        res.writeHead(204).end();
        return;
      }
      const pages = store.list(parseFilter(url.searchParams));
      return sendJson(res, 200, { pages, received: store.received, evicted: store.evicted, capacity: store.capacity });
    }
    if (path.startsWith('/pages/')) {
      allow(method, ['POST']);
      const receiver = path.slice('/pages/'.length);
      if (!RECEIVER_PATTERN.test(receiver)) {
        throw new HttpError(404, `receiver must match ${RECEIVER_PATTERN.source}`);
      }
      const payload = parsePayload(await readBody(req, maxBodyBytes));
      const page = store.add(receiver, payload);
      counters.countPage(receiver, payload.alerts);
      log({
        time: page.receivedAt,
        level: 'info',
        msg: 'page received',
        seq: page.seq,
        receiver,
        status: payload.status,
        groupKey: payload.groupKey,
        alerts: payload.alerts.map((alert) => ({
          status: alert.status,
          alertname: alert.labels['alertname'],
          severity: alert.labels['severity'],
          service: alert.labels['service'],
          summary: alert.annotations['summary'],
          runbook_url: alert.annotations['runbook_url'],
        })),
      });
      return sendJson(res, 200, { seq: page.seq });
    }
    throw new HttpError(404, `no route for ${path}`);

    function allow(actual: string, allowed: readonly string[]): void {
      if (!allowed.includes(actual)) {
        res.setHeader('allow', allowed.join(', '));
        throw new HttpError(405, `method ${actual} not allowed on ${path}`);
      }
    }
  }

  return { server, store };
}

function parseFilter(params: URLSearchParams): PageFilter {
  const since = params.get('since');
  let sinceSeq: number | undefined;
  if (since !== null) {
    sinceSeq = Number(since);
    if (!Number.isInteger(sinceSeq) || sinceSeq < 0) throw new HttpError(400, 'since must be a non-negative integer');
  }
  return {
    receiver: params.get('receiver') ?? undefined,
    alertname: params.get('alertname') ?? undefined,
    status: params.get('status') ?? undefined,
    since: sinceSeq,
  };
}

async function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new HttpError(413, `body larger than ${limit} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      throw new HttpError(413, `body larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringRecord(value: unknown, what: string): Record<string, string> {
  if (value === undefined) return {};
  if (!isRecord(value)) throw new HttpError(400, `${what} must be an object`);
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw new HttpError(400, `${what}.${key} must be a string`);
    out[key] = item;
  }
  return out;
}

function optionalString(value: unknown, what: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new HttpError(400, `${what} must be a string`);
  return value;
}

/** Validates the shape of an Alertmanager webhook notification; keeps only its documented fields. */
export function parsePayload(body: string): WebhookPayload {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
  if (!isRecord(raw)) throw new HttpError(400, 'body must be a JSON object');
  if (!Array.isArray(raw['alerts'])) throw new HttpError(400, 'alerts must be an array');
  const alerts = raw['alerts'].map((item: unknown, index: number): WebhookAlert => {
    if (!isRecord(item)) throw new HttpError(400, `alerts[${index}] must be an object`);
    const status = optionalString(item['status'], `alerts[${index}].status`) ?? 'firing';
    return {
      status,
      labels: stringRecord(item['labels'], `alerts[${index}].labels`),
      annotations: stringRecord(item['annotations'], `alerts[${index}].annotations`),
      startsAt: optionalString(item['startsAt'], `alerts[${index}].startsAt`),
      endsAt: optionalString(item['endsAt'], `alerts[${index}].endsAt`),
      generatorURL: optionalString(item['generatorURL'], `alerts[${index}].generatorURL`),
      fingerprint: optionalString(item['fingerprint'], `alerts[${index}].fingerprint`),
    };
  });
  const truncated = raw['truncatedAlerts'];
  if (truncated !== undefined && typeof truncated !== 'number') throw new HttpError(400, 'truncatedAlerts must be a number');
  return {
    version: optionalString(raw['version'], 'version'),
    groupKey: optionalString(raw['groupKey'], 'groupKey'),
    truncatedAlerts: truncated,
    status: optionalString(raw['status'], 'status') ?? 'firing',
    receiver: optionalString(raw['receiver'], 'receiver') ?? '',
    groupLabels: stringRecord(raw['groupLabels'], 'groupLabels'),
    commonLabels: stringRecord(raw['commonLabels'], 'commonLabels'),
    commonAnnotations: stringRecord(raw['commonAnnotations'], 'commonAnnotations'),
    externalURL: optionalString(raw['externalURL'], 'externalURL'),
    alerts,
  };
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function renderMetrics(store: PageStore, counters: Counters): string {
  const lines: string[] = [
    '# HELP pager_sink_pages_received_total Webhook notifications received, by receiver.',
    '# TYPE pager_sink_pages_received_total counter',
  ];
  for (const [receiver, count] of counters.pages) {
    lines.push(`pager_sink_pages_received_total{receiver="${escapeLabel(receiver)}"} ${count}`);
  }
  lines.push(
    '# HELP pager_sink_alerts_received_total Alerts inside received notifications, by receiver and status.',
    '# TYPE pager_sink_alerts_received_total counter',
  );
  for (const [key, count] of counters.alerts) {
    const [receiver = '', status = ''] = key.split('\u0000');
    lines.push(`pager_sink_alerts_received_total{receiver="${escapeLabel(receiver)}",status="${status}"} ${count}`);
  }
  lines.push(
    '# HELP pager_sink_requests_rejected_total Notifications rejected as malformed or too large.',
    '# TYPE pager_sink_requests_rejected_total counter',
    `pager_sink_requests_rejected_total ${counters.rejected}`,
    '# HELP pager_sink_pages_stored Pages held in memory now.',
    '# TYPE pager_sink_pages_stored gauge',
    `pager_sink_pages_stored ${store.size}`,
    '# HELP pager_sink_pages_evicted_total Pages dropped from memory to respect the capacity, or cleared.',
    '# TYPE pager_sink_pages_evicted_total counter',
    `pager_sink_pages_evicted_total ${store.evicted}`,
  );
  return `${lines.join('\n')}\n`;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendProblem(res: http.ServerResponse, status: number, detail: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify({ type: 'about:blank', title: http.STATUS_CODES[status] ?? 'Error', status, detail });
  res.writeHead(status, { 'content-type': 'application/problem+json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
