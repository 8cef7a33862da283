/**
 * The Collector tier for more than one machine, for real: the agent Collector (collector/agent.yaml) routes
 * spans by trace id to two gateway Collectors (collector/gateway.yaml) that sample whole traces (tail
 * sampling), in front of the real Jaeger v2 as the trace store. All from the tier binary (OTELCOL_TIER_BIN,
 * collector/builder-tier.yaml) on 127.0.0.1; see harness/tier.ts.
 *
 * The traffic: a few hundred traces of four spans each from the OpenTelemetry JS SDK over OTLP/HTTP to the
 * agent, healthy ones, error ones (the error on a grandchild span, not the root) and slow ones (lasting
 * past the latency threshold; the span timestamps say so, nothing waits). What must hold:
 *   - no trace is split across gateways: the gateways together decide exactly once per trace sent, receive
 *     every span exactly once, and all spans of a kept trace carry the tag of one gateway; both got traffic;
 *   - every error trace and every slow trace is kept, complete (all four spans);
 *   - the healthy traces are kept at about the configured share (a tolerant band, never a time).
 *
 * Run: npm run test:stack (vitest.stack.config.ts), or this file alone with
 * `npx vitest run --config vitest.stack.config.ts test/stack/collector-tier.test.ts`. Binaries:
 * scripts/stack-binaries.sh (OTELCOL_TIER_BIN, JAEGER_BIN); under CI a missing binary fails, elsewhere the
 * file is skipped with the reason.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BatchSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { findStackBinary, type StackBinaryName } from '../../scripts/stack/binaries.ts';
import { isErrorStatus, until, type TraceSpan } from '../../scripts/stack/clients.ts';
import { CollectorTier } from '../../scripts/stack/tier.ts';

/** The gateways' tail sampling knobs for this test (collector/gateway.yaml reads them). */
const SHARE_PERCENT = 25;
const LATENCY_THRESHOLD_MS = 2_000;
/** Shorter than the committed 10 s so the test does not idle; decisions still wait for whole traces. */
const DECISION_WAIT = '2s';
const GATEWAYS = 2;
/** The span attribute gateway.yaml's attributes/gateway processor sets. */
const GATEWAY_TAG = 'switchyard.collector.gateway';

/** Per 31 traces: 4 with an error, 3 slow, 24 healthy; 10 rounds: 310 traces, 1240 spans. */
const ROUNDS = 10;
const SPANS_PER_TRACE = 4;
type TraceKind = 'healthy' | 'error' | 'slow';
const kindOf = (i: number): TraceKind => (i % 31 < 4 ? 'error' : i % 31 < 7 ? 'slow' : 'healthy');

const log = (line: string) => process.stdout.write(`[tier-test] ${line}\n`);

const lookups = (['otelcolTier', 'jaeger'] as StackBinaryName[]).map((name) => findStackBinary(name));
const missing = lookups.filter((l) => !l.path).map((l) => l.reason ?? 'unknown');
const skip = missing.length > 0 && !process.env['CI'];
if (skip) process.stderr.write(`collector tier stack test skipped: ${missing.join('; ')}\n`);

interface SentTrace {
  readonly traceId: string;
  readonly kind: TraceKind;
}

/** Delegates to the OTLP exporter and counts what the agent accepted (and every failure, with its reason). */
class CountingExporter implements SpanExporter {
  exported = 0;
  readonly failures: string[] = [];
  readonly #inner: SpanExporter;
  constructor(inner: SpanExporter) {
    this.#inner = inner;
  }
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.#inner.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) this.exported += spans.length;
      else this.failures.push(result.error?.message ?? 'failed');
      done(result);
    });
  }
  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }
  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }
}

/**
 * One trace: `checkout` (server, root) -> `load cart`, `charge` -> `bank call`. An error trace fails in
 * `bank call` (a grandchild); a slow one lasts past the threshold; healthy and error ones last 40-230 ms.
 * Timestamps are set explicitly, ending now.
 */
function emitTrace(tracer: Tracer, kind: TraceKind, index: number): SentTrace {
  const now = Date.now();
  const durationMs = kind === 'slow' ? LATENCY_THRESHOLD_MS + 1_000 + (index % 10) * 100 : 40 + (index % 20) * 10;
  const at = (fraction: number) => new Date(now - durationMs + Math.round(fraction * durationMs));
  const root = tracer.startSpan('checkout', { kind: SpanKind.SERVER, startTime: at(0), attributes: { 'test.kind': kind, 'test.index': index } }, ROOT_CONTEXT);
  const rootContext = trace.setSpan(ROOT_CONTEXT, root);
  tracer.startSpan('load cart', { kind: SpanKind.INTERNAL, startTime: at(0.05) }, rootContext).end(at(0.35));
  const charge = tracer.startSpan('charge', { kind: SpanKind.CLIENT, startTime: at(0.4) }, rootContext);
  const bank = tracer.startSpan('bank call', { kind: SpanKind.INTERNAL, startTime: at(0.45) }, trace.setSpan(ROOT_CONTEXT, charge));
  if (kind === 'error') bank.setStatus({ code: SpanStatusCode.ERROR, message: 'card declined' });
  bank.end(at(0.9));
  charge.end(at(0.95));
  root.end(at(1));
  return { traceId: root.spanContext().traceId, kind };
}

/** Looks every trace up in Jaeger (a few at a time): the spans of those it has. */
async function lookUp(tier: CollectorTier, traceIds: readonly string[]): Promise<Map<string, TraceSpan[]>> {
  const found = new Map<string, TraceSpan[]>();
  const queue = [...traceIds];
  await Promise.all(Array.from({ length: 6 }, async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      const spans = await tier.traces.trace(id);
      if (spans && spans.length > 0) found.set(id, spans);
    }
  }));
  return found;
}

const DECIDED = 'otelcol_processor_tail_sampling_global_count_traces_sampled_total';

describe.skipIf(skip)('the Collector tier: an agent routing by trace id to two tail-sampling gateways', () => {
  let tier: CollectorTier;
  let failed = false;
  const sent: SentTrace[] = [];
  const started = Date.now();

  beforeAll(async () => {
    if (missing.length > 0) throw new Error(`stack binaries missing (CI): ${missing.join('; ')}`);
    tier = await CollectorTier.start({
      otelcolTier: lookups[0]!.path!, jaeger: lookups[1]!.path!, gateways: GATEWAYS, log,
      gatewayEnv: {
        OTELCOL_TAIL_DECISION_WAIT: DECISION_WAIT,
        OTELCOL_TAIL_LATENCY_THRESHOLD_MS: String(LATENCY_THRESHOLD_MS),
        OTELCOL_TAIL_SAMPLING_PERCENTAGE: String(SHARE_PERCENT),
      },
    });
  }, 300_000);

  afterEach((context) => {
    if (context.task.result?.state === 'fail') {
      failed = true;
      if (tier) process.stderr.write(`\n===== tier logs (tails) after "${context.task.name}" =====\n${tier.tails()}\n`);
    }
  });

  afterAll(async () => {
    await tier?.stop({ keep: failed || process.env['STACK_KEEP'] === '1' });
    log(`file took ${Math.round((Date.now() - started) / 1000)} s`);
  }, 60_000);

  it('the agent accepts every span sent over OTLP', async () => {
    const exporter = new CountingExporter(new OTLPTraceExporter({ url: tier.agentTracesUrl, timeoutMillis: 30_000 }));
    const provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'tier-test-shop', 'service.namespace': 'switchyard-test' }),
      sampler: new AlwaysOnSampler(),
      spanProcessors: [new BatchSpanProcessor({ exporter, maxQueueSize: 8_192, maxExportBatchSize: 256, scheduledDelayMillis: 200 })],
    });
    const tracer = provider.getTracer('collector-tier-test');
    for (let i = 0; i < ROUNDS * 31; i++) sent.push(emitTrace(tracer, kindOf(i), i));
    await provider.forceFlush();
    await provider.shutdown();
    expect(exporter.failures, 'OTLP exports the agent refused').toEqual([]);
    expect(exporter.exported).toBe(sent.length * SPANS_PER_TRACE);
    expect(new Set(sent.map((t) => t.traceId)).size).toBe(sent.length);
    await until(async () => ((await tier.metricSum(tier.agent, 'otelcol_receiver_accepted_spans_total')) === exporter.exported ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 500, what: 'the agent counting every span it accepted' });
  }, 120_000);

  it('no trace is split: the gateways decide once per trace and get every span once, both get traffic', async () => {
    // Every trace decided (after the decision wait), by exactly one gateway: a trace split across gateways
    // would be decided twice.
    const perGateway = await until(async () => {
      const counts = await Promise.all(tier.gateways.map((g) => tier.metricSum(g, DECIDED)));
      return counts.reduce((a, b) => a + b, 0) >= sent.length ? counts : undefined;
    }, { timeoutMs: 120_000, intervalMs: 1_000, what: `${sent.length} sampling decisions across the gateways` });
    log(`decisions per gateway: ${perGateway.join(', ')}`);
    expect(perGateway.reduce((a, b) => a + b, 0)).toBe(sent.length);
    for (const [i, count] of perGateway.entries()) expect(count, `decisions of ${tier.gateways[i]!.id}`).toBeGreaterThan(0);

    // Every span reached exactly one gateway; nothing was refused or failed on the way.
    const spansSent = sent.length * SPANS_PER_TRACE;
    const received = await Promise.all(tier.gateways.map((g) => tier.metricSum(g, 'otelcol_receiver_accepted_spans_total')));
    expect(received.reduce((a, b) => a + b, 0)).toBe(spansSent);
    expect(await tier.metricSum(tier.agent, 'otelcol_exporter_sent_spans_total', { exporter: 'load_balancing' })).toBe(spansSent);
    for (const c of [tier.agent, ...tier.gateways]) {
      for (const name of ['otelcol_receiver_refused_spans_total', 'otelcol_receiver_failed_spans_total',
        'otelcol_exporter_send_failed_spans_total', 'otelcol_exporter_enqueue_failed_spans_total']) {
        expect(await tier.metricSum(c, name), `${c.process.name}: ${name}`).toBe(0);
      }
    }
  }, 180_000);

  it('keeps every error and slow trace whole, each from one gateway, and about the configured share of the rest', async () => {
    const kept = (await Promise.all(tier.gateways.map((g) => tier.metricSum(g, DECIDED, { decision: 'sampled' })))).reduce((a, b) => a + b, 0);
    // What the gateways kept is in Jaeger, complete (the gateways' exports and Jaeger's batch take a moment).
    const found = await until(async () => {
      const traces = await lookUp(tier, sent.map((t) => t.traceId));
      const complete = [...traces.values()].every((spans) => spans.length === SPANS_PER_TRACE);
      return traces.size >= kept && complete ? traces : undefined;
    }, { timeoutMs: 120_000, intervalMs: 2_000, what: `the ${kept} kept traces complete in Jaeger` });
    expect(found.size, 'traces in Jaeger = traces the gateways kept').toBe(kept);

    const byKind = (kind: TraceKind) => sent.filter((t) => t.kind === kind);
    for (const t of [...byKind('error'), ...byKind('slow')]) {
      const spans = found.get(t.traceId);
      expect(spans, `${t.kind} trace ${t.traceId} kept`).toBeDefined();
      expect(spans!.map((s) => s.name).sort(), `${t.kind} trace ${t.traceId} complete`).toEqual(['bank call', 'charge', 'checkout', 'load cart']);
      if (t.kind === 'error') {
        expect(spans!.filter((s) => isErrorStatus(s.status)).map((s) => s.name), `error span of ${t.traceId}`).toEqual(['bank call']);
      } else {
        const root = spans!.find((s) => s.name === 'checkout')!;
        expect(root.durationMs, `slow trace ${t.traceId} lasts past the threshold`).toBeGreaterThan(LATENCY_THRESHOLD_MS);
      }
    }

    // All spans of a kept trace went through one gateway; between them the gateways kept traces of both.
    const gatewayOf = new Map<string, string>();
    for (const [traceId, spans] of found) {
      const tags = new Set(spans.map((s) => String(s.attributes[GATEWAY_TAG] ?? '(none)')));
      expect([...tags], `gateway tags of trace ${traceId}`).toHaveLength(1);
      gatewayOf.set(traceId, [...tags][0]!);
    }
    const perGateway = Object.fromEntries(tier.gateways.map((g) => [g.id!, [...gatewayOf.values()].filter((id) => id === g.id).length]));
    log(`kept traces per gateway: ${JSON.stringify(perGateway)}`);
    expect(Object.values(perGateway).reduce((a, b) => a + b, 0), 'every kept trace tagged by a known gateway').toBe(found.size);
    for (const [id, count] of Object.entries(perGateway)) expect(count, `traces kept by ${id}`).toBeGreaterThan(0);

    // Healthy traces: about the configured share (25 %), in a tolerant band (10 % to 45 %).
    const healthy = byKind('healthy');
    const healthyKept = healthy.filter((t) => found.has(t.traceId)).length;
    const share = healthyKept / healthy.length;
    log(`kept: ${found.size} of ${sent.length} traces; healthy ${healthyKept} of ${healthy.length} (${(share * 100).toFixed(1)} %, configured ${SHARE_PERCENT} %)`);
    expect(share).toBeGreaterThanOrEqual(0.10);
    expect(share).toBeLessThanOrEqual(0.45);
  }, 180_000);
});
