import { afterEach, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import { createPagerSink, parsePayload } from '../../src/pager-sink/server.ts';
import { PageStore } from '../../src/pager-sink/store.ts';

/** A notification shaped like what Alertmanager v0.34 posts to a webhook receiver. */
function notification(alertname: string, status: 'firing' | 'resolved' = 'firing', receiver = 'pager') {
  return {
    version: '4',
    groupKey: `{}/{severity="critical"}:{alertname="${alertname}", service="switchyard-engine"}`,
    truncatedAlerts: 0,
    status,
    receiver,
    groupLabels: { alertname, service: 'switchyard-engine' },
    commonLabels: { alertname, service: 'switchyard-engine', severity: 'critical' },
    commonAnnotations: { summary: `${alertname} summary`, runbook_url: `alerts/runbooks/${alertname}.md` },
    externalURL: 'http://alertmanager:9093',
    alerts: [
      {
        status,
        labels: { alertname, service: 'switchyard-engine', severity: 'critical', tool_id: 'flaky' },
        annotations: { summary: `${alertname} summary`, description: 'd', runbook_url: `alerts/runbooks/${alertname}.md` },
        startsAt: '2026-01-01T00:00:00Z',
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus:9090/graph',
        fingerprint: 'abc123',
      },
    ],
  };
}

const sinks: Array<{ close: () => Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(sinks.splice(0).map((sink) => sink.close()));
});

async function startSink(maxPages = 10, maxBodyBytes?: number) {
  const logged: Array<Record<string, unknown>> = [];
  const sink = createPagerSink({ maxPages, maxBodyBytes, log: (entry) => logged.push(entry) });
  await new Promise<void>((resolve) => sink.server.listen(0, '127.0.0.1', resolve));
  const { port } = sink.server.address() as AddressInfo;
  const close = () =>
    new Promise<void>((resolve) => {
      sink.server.closeAllConnections();
      sink.server.close(() => resolve());
    });
  sinks.push({ close });
  return { ...sink, logged, base: `http://127.0.0.1:${port}` };
}

async function post(base: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('pager sink HTTP API', () => {
  it('answers /healthz', async () => {
    const { base } = await startSink();
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('keeps and logs an Alertmanager notification under the receiver of its path', async () => {
    const { base, logged } = await startSink();
    const res = await post(base, '/pages/pager', notification('HighToolErrorRate'));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ seq: 1 });

    const list = (await (await fetch(`${base}/pages`)).json()) as {
      pages: Array<{ seq: number; receiver: string; receivedAt: string; payload: ReturnType<typeof notification> }>;
      received: number;
      evicted: number;
      capacity: number;
    };
    expect(list.received).toBe(1);
    expect(list.capacity).toBe(10);
    expect(list.pages).toHaveLength(1);
    const page = list.pages[0]!;
    expect(page.receiver).toBe('pager');
    expect(Date.parse(page.receivedAt)).not.toBeNaN();
    expect(page.payload.commonLabels.alertname).toBe('HighToolErrorRate');
    expect(page.payload.alerts[0]!.annotations.runbook_url).toBe('alerts/runbooks/HighToolErrorRate.md');
    expect(page.payload.alerts[0]!.labels.tool_id).toBe('flaky');

    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({
      msg: 'page received',
      seq: 1,
      receiver: 'pager',
      status: 'firing',
      alerts: [{ alertname: 'HighToolErrorRate', severity: 'critical', service: 'switchyard-engine', status: 'firing', runbook_url: 'alerts/runbooks/HighToolErrorRate.md' }],
    });
    // One JSON line per page: the entry serialises without newlines.
    expect(JSON.stringify(logged[0])).not.toContain('\n');
  });

  it('filters pages by receiver, alertname, status and sequence', async () => {
    const { base } = await startSink();
    await post(base, '/pages/pager', notification('HighToolErrorRate'));
    await post(base, '/pages/notify', notification('SyncExecutionTimeouts', 'firing', 'notify'));
    await post(base, '/pages/pager', notification('HighToolErrorRate', 'resolved'));

    const get = async (query: string) =>
      ((await (await fetch(`${base}/pages?${query}`)).json()) as { pages: Array<{ seq: number }> }).pages.map((p) => p.seq);
    expect(await get('')).toEqual([1, 2, 3]);
    expect(await get('receiver=pager')).toEqual([1, 3]);
    expect(await get('receiver=notify')).toEqual([2]);
    expect(await get('alertname=SyncExecutionTimeouts')).toEqual([2]);
    expect(await get('status=resolved')).toEqual([3]);
    expect(await get('since=1')).toEqual([2, 3]);
    expect((await fetch(`${base}/pages?since=-1`)).status).toBe(400);
  });

  it('keeps only the last maxPages pages', async () => {
    const { base, store } = await startSink(3);
    for (let i = 0; i < 7; i++) await post(base, '/pages/pager', notification(`Alert${i}`));
    const list = (await (await fetch(`${base}/pages`)).json()) as { pages: Array<{ seq: number }>; received: number; evicted: number };
    expect(list.pages.map((p) => p.seq)).toEqual([5, 6, 7]);
    expect(list.received).toBe(7);
    expect(list.evicted).toBe(4);
    expect(store.size).toBe(3);
  });

  it('forgets every page on DELETE /pages', async () => {
    const { base } = await startSink();
    await post(base, '/pages/pager', notification('HighToolErrorRate'));
    expect((await fetch(`${base}/pages`, { method: 'DELETE' })).status).toBe(204);
    const list = (await (await fetch(`${base}/pages`)).json()) as { pages: unknown[]; received: number };
    expect(list.pages).toEqual([]);
    expect(list.received).toBe(1);
  });

  it('rejects malformed notifications with problem+json', async () => {
    const { base, logged } = await startSink();
    for (const body of ['not json', '[]', '{"alerts": 3}', '{"alerts": [{"labels": {"a": 1}}]}']) {
      const res = await post(base, '/pages/pager', body);
      expect(res.status, body).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(((await res.json()) as { status: number }).status).toBe(400);
    }
    expect(logged).toEqual([]);
  });

  it('rejects bodies above the size limit', async () => {
    const { base } = await startSink(10, 512);
    const big = notification('HighToolErrorRate');
    const res = await post(base, '/pages/pager', { ...big, commonAnnotations: { description: 'x'.repeat(2048) } });
    expect(res.status).toBe(413);
  });

  it('rejects receiver names outside the allowed pattern and unknown routes', async () => {
    const { base } = await startSink();
    expect((await post(base, '/pages/bad%20name', notification('X'))).status).toBe(404);
    expect((await post(base, '/pages/a/b', notification('X'))).status).toBe(404);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    const wrongMethod = await fetch(`${base}/pages/pager`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
  });

  it('exposes counters in the Prometheus text format', async () => {
    const { base } = await startSink();
    await post(base, '/pages/pager', notification('HighToolErrorRate'));
    await post(base, '/pages/pager', notification('HighToolErrorRate', 'resolved'));
    await post(base, '/pages/notify', notification('SyncExecutionTimeouts'));
    await post(base, '/pages/pager', 'garbage');
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('pager_sink_pages_received_total{receiver="pager"} 2');
    expect(text).toContain('pager_sink_pages_received_total{receiver="notify"} 1');
    expect(text).toContain('pager_sink_alerts_received_total{receiver="pager",status="firing"} 1');
    expect(text).toContain('pager_sink_alerts_received_total{receiver="pager",status="resolved"} 1');
    expect(text).toContain('pager_sink_requests_rejected_total 1');
    expect(text).toContain('pager_sink_pages_stored 3');
  });
});

describe('parsePayload', () => {
  it('keeps the documented fields and defaults missing optional ones', () => {
    const payload = parsePayload(JSON.stringify({ alerts: [{ labels: { alertname: 'A' } }], extra: 'ignored' }));
    expect(payload.status).toBe('firing');
    expect(payload.alerts[0]).toMatchObject({ status: 'firing', labels: { alertname: 'A' }, annotations: {} });
    expect(payload).not.toHaveProperty('extra');
  });
});

describe('PageStore', () => {
  it('refuses a non-positive capacity', () => {
    expect(() => new PageStore(0)).toThrow(RangeError);
  });
});
