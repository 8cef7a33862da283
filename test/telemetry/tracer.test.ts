/**
 * The engine's own tracer (src/telemetry/tracer.ts) and its OTLP encoding (otlp-spans.ts) against the SDK's:
 * the same API calls made on both tracers must give the same spans once exported. The SDK's spans go through
 * its own OTLP protobuf serializer, ours through our encoder; both requests are read back by the same decoder,
 * so a field our encoder writes differently (or forgets) shows up as a difference.
 */
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Span, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, TraceIdRatioBasedSampler, ParentBasedSampler } from '@opentelemetry/sdk-trace';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeTraceRequest, type DecodedSpan } from '../../src/telemetry/otlp-spans.ts';
import { ProtobufReader, ProtobufWriter } from '../../src/telemetry/protobuf.ts';
import { SwitchyardTracerProvider } from '../../src/telemetry/tracer.ts';
import { ensureContextManager, InMemorySpanSink } from '../support/telemetry.ts';

beforeAll(() => {
  ensureContextManager();
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
});

const REMOTE_TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const REMOTE_SPAN_ID = '00f067aa0ba902b7';

/** One scenario of API calls, made the same way on any tracer. */
async function scenario(tracer: Tracer): Promise<void> {
  const remote = propagation.extract(ROOT_CONTEXT, { traceparent: `00-${REMOTE_TRACE_ID}-${REMOTE_SPAN_ID}-01` });
  const server = tracer.startSpan('POST', { kind: SpanKind.SERVER, attributes: { 'http.request.method': 'POST', 'url.path': '/api/v1/x' } }, remote);
  await context.with(trace.setSpan(remote, server), async () => {
    await tracer.startActiveSpan('workflow.execute_sync', { attributes: { 'switchyard.workflow.id': 'quick_answer', timeout_ms: 60_000 } }, async (span: Span) => {
      span.setAttributes({
        int: 42, negative: -7, big: 2 ** 40, huge: 2 ** 70, double: 0.25, bool: true, falsy: false, empty: '',
        unicode: 'grüße 🚀 ünïcödé', long: 'x'.repeat(300), strings: ['a', 'b'], numbers: [1, 2.5, -3], bools: [true, false],
      });
      span.setAttribute('later', 'set after start');
      span.setAttribute('int', 43);
      span.addEvent('poll_iteration', { attempt: 1, state: 'pending' });
      span.addEvent('no attributes');
      const child = tracer.startSpan('agent.model_call', { kind: SpanKind.CLIENT, links: [{ context: { traceId: REMOTE_TRACE_ID, spanId: 'a000000000000001', traceFlags: 1, isRemote: true }, attributes: { why: 'resumed' } }] });
      child.recordException(Object.assign(new Error('model refused'), { name: 'ModelError' }));
      child.setStatus({ code: SpanStatusCode.ERROR, message: 'model refused' });
      child.updateName('agent.model_call renamed');
      child.end();
      const ok = tracer.startSpan('ok');
      ok.setStatus({ code: SpanStatusCode.OK });
      ok.setStatus({ code: SpanStatusCode.ERROR, message: 'ignored: OK is final' });
      ok.end();
      span.end();
      span.setAttribute('after end', 'ignored');
      span.end();
    });
  });
  server.updateName('POST /api/v1/x');
  server.setAttribute('http.response.status_code', 200);
  server.end();
  const root = tracer.startSpan('root', { root: true, kind: SpanKind.PRODUCER });
  root.end();
}

/** What must agree between two exports of the same scenario: all but the ids and the clock. */
function comparable(spans: DecodedSpan[]) {
  const byId = new Map(spans.map((span) => [span.spanId, span.name]));
  return spans.map((span) => ({
    name: span.name, kind: span.kind, traceFlags: span.traceFlags, attributes: span.attributes, droppedAttributesCount: span.droppedAttributesCount,
    // A stack trace names the tracer that made it: compare its first line.
    events: span.events.map((event) => ({ name: event.name, attributes: { ...event.attributes, 'exception.stacktrace': String(event.attributes['exception.stacktrace']).split('\n')[0] } })), links: span.links.map((link) => ({ ...link.context, attributes: link.attributes })),
    status: span.status, scope: span.instrumentationScope,
    parent: span.parentSpanContext && (byId.get(span.parentSpanContext.spanId) ?? `${span.parentSpanContext.spanId} remote=${span.parentSpanContext.isRemote}`),
    remoteTrace: span.traceId === REMOTE_TRACE_ID,
  }));
}

async function sdkExport(): Promise<DecodedSpan[]> {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  await scenario(provider.getTracer('switchyard', '1.2.3'));
  return decodeTraceRequest(ProtobufTraceSerializer.serializeRequest(exporter.getFinishedSpans())!);
}

async function ownExport(): Promise<{ spans: DecodedSpan[]; startedMs: number; endedMs: number }> {
  const sink = new InMemorySpanSink();
  const startedMs = Date.now();
  await scenario(new SwitchyardTracerProvider({ sink }).getTracer('switchyard', '1.2.3'));
  const endedMs = Date.now();
  return { spans: decodeTraceRequest(ProtobufTraceSerializer.serializeRequest(sink.spans)!), startedMs, endedMs };
}

describe('the engine tracer against the SDK', () => {
  it('exports the same spans for the same API calls: names, kinds, attributes of every type, events, links, status, parents', async () => {
    const ours = await ownExport();
    const theirs = await sdkExport();
    expect(ours.spans).toHaveLength(5);
    expect(comparable(ours.spans)).toEqual(comparable(theirs));
    // The parts that cannot be compared with another run: the ids' form and the clock.
    for (const span of ours.spans) {
      expect(span.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(span.spanId).toMatch(/^[0-9a-f]{16}$/);
      const startMs = span.startTime[0] * 1000 + span.startTime[1] / 1e6;
      const endMs = span.endTime[0] * 1000 + span.endTime[1] / 1e6;
      expect(startMs).toBeGreaterThanOrEqual(ours.startedMs - 5);
      expect(endMs).toBeGreaterThanOrEqual(startMs);
      expect(endMs).toBeLessThanOrEqual(ours.endedMs + 5);
    }
    const server = ours.spans.find((span) => span.name === 'POST /api/v1/x')!;
    expect(server.traceId).toBe(REMOTE_TRACE_ID);
    expect(server.parentSpanContext).toMatchObject({ spanId: REMOTE_SPAN_ID, isRemote: true });
    const root = ours.spans.find((span) => span.name === 'root')!;
    expect(root.parentSpanContext).toBeUndefined();
    expect(root.traceId).not.toBe(REMOTE_TRACE_ID);
  });

  it('hands out a span context only once asked, the same one each time, that children and traceparents agree with', async () => {
    const sink = new InMemorySpanSink();
    const tracer = new SwitchyardTracerProvider({ sink }).getTracer('t');
    const parent = tracer.startSpan('parent');
    const child = tracer.startSpan('child', {}, trace.setSpan(ROOT_CONTEXT, parent));
    child.end();
    parent.end();
    expect(parent.spanContext()).toBe(parent.spanContext());
    const carrier: Record<string, string> = {};
    propagation.inject(trace.setSpan(ROOT_CONTEXT, parent), carrier);
    expect(carrier['traceparent']).toBe(`00-${parent.spanContext().traceId}-${parent.spanContext().spanId}-01`);
    const [exportedChild, exportedParent] = sink.spans;
    expect(exportedChild!.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(exportedChild!.spanContext().traceId).toBe(parent.spanContext().traceId);
    expect(exportedParent!.spanContext().spanId).toBe(parent.spanContext().spanId);
  });
});

describe('limits and sampling', () => {
  it('keeps the attribute, event and link limits as the SDK does, counting what it drops', () => {
    const sink = new InMemorySpanSink();
    const tracer = new SwitchyardTracerProvider({ sink, limits: { attributeCountLimit: 3, attributeValueLengthLimit: 4, eventCountLimit: 2, linkCountLimit: 1 } }).getTracer('t');
    const span = tracer.startSpan('limited', { attributes: { a: 'abcdefgh', b: ['long one', 'ok'], c: 3 } });
    span.setAttribute('d', 'dropped');
    span.setAttribute('a', 'replaced, not dropped');
    for (const name of ['e1', 'e2', 'e3']) span.addEvent(name);
    span.addLink({ context: { traceId: REMOTE_TRACE_ID, spanId: REMOTE_SPAN_ID, traceFlags: 1 } });
    span.addLink({ context: { traceId: REMOTE_TRACE_ID, spanId: REMOTE_SPAN_ID, traceFlags: 1 } });
    span.end();
    const [exported] = sink.spans;
    expect(exported!.attributes).toEqual({ a: 'repl', b: ['long', 'ok'], c: 3 });
    expect(exported!.droppedAttributesCount).toBe(1);
    // Past the event limit the oldest event makes room.
    expect(exported!.events.map((event) => event.name)).toEqual(['e2', 'e3']);
    expect(exported!.droppedEventsCount).toBe(1);
    expect(exported!.links).toHaveLength(1);
    expect(exported!.droppedLinksCount).toBe(1);
  });

  it('follows an SDK sampler: an unsampled root gives non-recording spans, its children too, with valid contexts to propagate', () => {
    const sink = new InMemorySpanSink();
    const tracer = new SwitchyardTracerProvider({ sink, sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0) }) }).getTracer('t');
    const root = tracer.startSpan('root');
    const child = tracer.startSpan('child', {}, trace.setSpan(ROOT_CONTEXT, root));
    expect(root.isRecording()).toBe(false);
    expect(child.isRecording()).toBe(false);
    expect(child.spanContext().traceId).toBe(root.spanContext().traceId);
    expect(child.spanContext().traceFlags).toBe(TraceFlags.NONE);
    child.end();
    root.end();
    expect(sink.spans).toHaveLength(0);
  });

  it('records nothing for an unsampled remote parent by default (parent-based), and everything under a sampled one', () => {
    const sink = new InMemorySpanSink();
    const tracer = new SwitchyardTracerProvider({ sink }).getTracer('t');
    const unsampled = propagation.extract(ROOT_CONTEXT, { traceparent: `00-${REMOTE_TRACE_ID}-${REMOTE_SPAN_ID}-00` });
    tracer.startSpan('unsampled', {}, unsampled).end();
    const sampled = propagation.extract(ROOT_CONTEXT, { traceparent: `00-${REMOTE_TRACE_ID}-${REMOTE_SPAN_ID}-01` });
    tracer.startSpan('sampled', {}, sampled).end();
    expect(sink.spans.map((span) => span.name)).toEqual(['sampled']);
  });
});

describe('the protobuf writer and reader', () => {
  it('writes varints, int64s and nested lengths at every size boundary, and reads them back', () => {
    const values = [0, 1, 127, 128, 16_383, 16_384, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53 - 1];
    const w = new ProtobufWriter(8);
    for (const value of values) w.varint(value);
    for (const value of [-1, -(2 ** 40), 2 ** 62]) w.int64(value);
    // Nested contents of 127, 128 and 20 000 bytes: the kept length byte is enough, then it is not.
    for (const size of [127, 128, 20_000]) {
      const start = w.begin();
      w.raw(new Uint8Array(size).fill(7));
      w.finish(start);
    }
    const r = new ProtobufReader(w.bytes());
    for (const value of values) expect(r.varint()).toBe(value);
    for (const value of [-1, -(2 ** 40), 2 ** 62]) expect(r.int64()).toBe(value);
    for (const size of [127, 128, 20_000]) {
      const nested = r.nested();
      expect(nested.end - nested.pos).toBe(size);
    }
    expect(r.done()).toBe(true);
  });

  it('refuses bytes that are cut short instead of reading past them', () => {
    const w = new ProtobufWriter();
    w.tag(1, 2);
    w.string('a string of some length');
    const cut = w.bytes().slice(0, 10);
    const r = new ProtobufReader(cut);
    r.tag();
    expect(() => r.string()).toThrow(/truncated/);
    expect(() => decodeTraceRequest(Uint8Array.from([0x0a, 0x05, 0x12]))).toThrow(/truncated/);
  });
});

