/**
 * Spans in OTLP protobuf (opentelemetry/proto/trace/v1/trace.proto), written straight from the tracer's spans
 * (telemetry/tracer.ts) as they end, and read back (for OTLP/JSON, which the export worker makes from the
 * same bytes, and for tests). Field numbers are the proto's; the comments name the messages.
 */
import { SpanStatusCode, type Attributes, type AttributeValue, type HrTime, type SpanKind, type SpanStatus } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { ProtobufReader, ProtobufWriter, TWO_32, WireType } from './protobuf.ts';

/** Times are milliseconds since `performance.timeOrigin` (what `performance.now()` returns). */
export interface EncodableEvent {
  readonly name: string;
  readonly time: number;
  readonly attributes: Attributes | undefined;
  readonly droppedAttributesCount: number;
}

export interface EncodableLink {
  readonly traceId: string;
  readonly spanId: string;
  readonly traceFlags: number;
  readonly traceState: string | undefined;
  readonly isRemote: boolean;
  readonly attributes: Attributes | undefined;
  readonly droppedAttributesCount: number;
}

/** Ids are 32-bit words, most significant first: 4 for the trace id, 2 for span ids (no hex on the hot path). */
export interface EncodableSpan {
  readonly name: string;
  readonly kind: SpanKind;
  readonly traceIdWords: readonly number[];
  readonly spanIdWords: readonly number[];
  readonly traceFlags: number;
  readonly traceStateHeader: string | undefined;
  readonly parentSpanIdWords: readonly number[] | undefined;
  readonly parentIsRemote: boolean;
  readonly startTime: number;
  readonly endTime: number;
  readonly attributes: Attributes;
  readonly droppedAttributesCount: number;
  readonly events: readonly EncodableEvent[] | undefined;
  readonly droppedEventsCount: number;
  readonly links: readonly EncodableLink[] | undefined;
  readonly droppedLinksCount: number;
  readonly status: SpanStatus;
}

export interface InstrumentationScope {
  readonly name: string;
  readonly version?: string;
  readonly schemaUrl?: string;
}

// Span flags (trace.proto SpanFlags): the low byte is the W3C trace flags; bit 8 says whether bit 9 (the
// parent or linked span is remote) is known. We always know it.
const HAS_IS_REMOTE = 0x100;
const IS_REMOTE = 0x200;

// The epoch time of performance.timeOrigin in nanoseconds, as two 32-bit halves: a span's times are added to it
// without a BigInt per span.
const ORIGIN_NS = BigInt(Math.round(performance.timeOrigin * 1000)) * 1000n;
const ORIGIN_LOW = Number(ORIGIN_NS & 0xffffffffn);
const ORIGIN_HIGH = Number(ORIGIN_NS >> 32n);

/** Epoch nanoseconds of a time in ms since timeOrigin, as a fixed64. */
function writeTime(w: ProtobufWriter, ms: number): void {
  const delta = Math.round(ms * 1e6);
  if (delta < 0 || delta > Number.MAX_SAFE_INTEGER) {
    const ns = BigInt.asUintN(64, ORIGIN_NS + BigInt(delta));
    w.fixed64(Number(ns & 0xffffffffn), Number(ns >> 32n));
    return;
  }
  let low = ORIGIN_LOW + (delta % TWO_32);
  let high = ORIGIN_HIGH + Math.floor(delta / TWO_32);
  if (low >= TWO_32) {
    low -= TWO_32;
    high += 1;
  }
  w.fixed64(low, high);
}

/**
 * Writes spans: each attribute key's encoding is kept (most keys repeat on every span), and values are
 * written as the SDK's OTLP serializer writes them (integers as int_value, other numbers as double_value).
 */
export class SpanEncoder {
  readonly #keys = new Map<string, Uint8Array>();
  static readonly MAX_CACHED_KEYS = 1024;

  /** A ScopeSpans.spans entry (field 2, length-delimited Span). */
  writeSpanField(w: ProtobufWriter, span: EncodableSpan): void {
    w.tag(2, WireType.LENGTH);
    const start = w.begin();
    this.writeSpan(w, span);
    w.finish(start);
  }

  writeSpan(w: ProtobufWriter, span: EncodableSpan): void {
    w.tag(1, WireType.LENGTH);
    w.idWords(span.traceIdWords);
    w.tag(2, WireType.LENGTH);
    w.idWords(span.spanIdWords);
    if (span.traceStateHeader) {
      w.tag(3, WireType.LENGTH);
      w.string(span.traceStateHeader);
    }
    if (span.parentSpanIdWords !== undefined) {
      w.tag(4, WireType.LENGTH);
      w.idWords(span.parentSpanIdWords);
    }
    w.tag(5, WireType.LENGTH);
    w.string(span.name);
    w.tag(6, WireType.VARINT);
    w.varint(span.kind + 1); // the proto's SpanKind counts UNSPECIFIED as 0; the API's INTERNAL is 0
    w.tag(7, WireType.FIXED64);
    writeTime(w, span.startTime);
    w.tag(8, WireType.FIXED64);
    writeTime(w, span.endTime);
    this.writeAttributes(w, 9, span.attributes);
    writeCount(w, 10, span.droppedAttributesCount);
    if (span.events) {
      for (const event of span.events) {
        w.tag(11, WireType.LENGTH);
        const start = w.begin();
        w.tag(1, WireType.FIXED64);
        writeTime(w, event.time);
        w.tag(2, WireType.LENGTH);
        w.string(event.name);
        if (event.attributes) this.writeAttributes(w, 3, event.attributes);
        writeCount(w, 4, event.droppedAttributesCount);
        w.finish(start);
      }
    }
    writeCount(w, 12, span.droppedEventsCount);
    if (span.links) {
      for (const link of span.links) {
        w.tag(13, WireType.LENGTH);
        const start = w.begin();
        w.tag(1, WireType.LENGTH);
        w.hexBytes(link.traceId);
        w.tag(2, WireType.LENGTH);
        w.hexBytes(link.spanId);
        if (link.traceState) {
          w.tag(3, WireType.LENGTH);
          w.string(link.traceState);
        }
        if (link.attributes) this.writeAttributes(w, 4, link.attributes);
        writeCount(w, 5, link.droppedAttributesCount);
        w.tag(6, WireType.FIXED32);
        w.fixed32((link.traceFlags & 0xff) | HAS_IS_REMOTE | (link.isRemote ? IS_REMOTE : 0));
        w.finish(start);
      }
    }
    writeCount(w, 14, span.droppedLinksCount);
    const { status } = span;
    if (status.code !== SpanStatusCode.UNSET || status.message) {
      w.tag(15, WireType.LENGTH);
      const start = w.begin();
      if (status.message) {
        w.tag(2, WireType.LENGTH);
        w.string(status.message);
      }
      w.tag(3, WireType.VARINT);
      w.varint(status.code);
      w.finish(start);
    }
    w.tag(16, WireType.FIXED32);
    w.fixed32((span.traceFlags & 0xff) | HAS_IS_REMOTE | (span.parentIsRemote ? IS_REMOTE : 0));
  }

  /** Repeated KeyValue (field `field`); a value of no attribute type (null, an object) is left out. */
  writeAttributes(w: ProtobufWriter, field: number, attributes: Attributes): void {
    for (const key in attributes) {
      const value = attributes[key];
      if (value === undefined || value === null) continue;
      w.tag(field, WireType.LENGTH);
      const start = w.begin();
      w.raw(this.#key(key));
      w.tag(2, WireType.LENGTH);
      const valueStart = w.begin();
      writeAnyValue(w, value);
      w.finish(valueStart);
      w.finish(start);
    }
  }

  /** KeyValue.key (field 1) as bytes, built once per key. */
  #key(key: string): Uint8Array {
    let bytes = this.#keys.get(key);
    if (bytes) return bytes;
    const w = new ProtobufWriter(key.length * 3 + 8);
    w.tag(1, WireType.LENGTH);
    w.string(key);
    bytes = w.bytes().slice();
    if (this.#keys.size < SpanEncoder.MAX_CACHED_KEYS) this.#keys.set(key, bytes);
    return bytes;
  }
}

/** A count field (dropped attributes, events, links), left out at zero as proto3 leaves it. */
function writeCount(w: ProtobufWriter, field: number, count: number): void {
  if (count === 0) return;
  w.tag(field, WireType.VARINT);
  w.varint(count);
}

function writeAnyValue(w: ProtobufWriter, value: AttributeValue | null | undefined): void {
  switch (typeof value) {
    case 'string':
      w.tag(1, WireType.LENGTH);
      w.string(value);
      return;
    case 'boolean':
      w.tag(2, WireType.VARINT);
      w.varint(value ? 1 : 0);
      return;
    case 'number':
      if (Number.isInteger(value) && value >= -(2 ** 63) && value < 2 ** 63) {
        w.tag(3, WireType.VARINT);
        w.int64(value);
      } else {
        w.tag(4, WireType.FIXED64);
        w.double(value);
      }
      return;
    default:
      if (Array.isArray(value)) {
        w.tag(5, WireType.LENGTH);
        const start = w.begin();
        for (const item of value) {
          w.tag(1, WireType.LENGTH);
          const itemStart = w.begin();
          writeAnyValue(w, item);
          w.finish(itemStart);
        }
        w.finish(start);
      }
  }
}

/** A Resource message's bytes (attributes only). */
export function encodeResource(attributes: Attributes): Uint8Array {
  const w = new ProtobufWriter(1024);
  new SpanEncoder().writeAttributes(w, 1, attributes);
  return w.bytes().slice();
}

/** An InstrumentationScope message's bytes. */
export function encodeScope(scope: InstrumentationScope): Uint8Array {
  const w = new ProtobufWriter(256);
  w.tag(1, WireType.LENGTH);
  w.string(scope.name);
  if (scope.version) {
    w.tag(2, WireType.LENGTH);
    w.string(scope.version);
  }
  return w.bytes().slice();
}

/**
 * An ExportTraceServiceRequest: one ResourceSpans with one ScopeSpans per scope, whose `spans` are the
 * already-written Span fields.
 */
export function encodeTraceRequest(resource: Uint8Array, scopes: ReadonlyArray<{ scope: InstrumentationScope; encodedScope: Uint8Array; spans: Uint8Array }>): Uint8Array {
  const w = new ProtobufWriter(64 + resource.length + scopes.reduce((n, s) => n + s.spans.length + s.encodedScope.length + 16, 0));
  w.tag(1, WireType.LENGTH);
  const resourceSpans = w.begin();
  w.tag(1, WireType.LENGTH);
  w.varint(resource.length);
  w.raw(resource);
  for (const { scope, encodedScope, spans } of scopes) {
    w.tag(2, WireType.LENGTH);
    const scopeSpans = w.begin();
    w.tag(1, WireType.LENGTH);
    w.varint(encodedScope.length);
    w.raw(encodedScope);
    w.raw(spans);
    if (scope.schemaUrl) {
      w.tag(3, WireType.LENGTH);
      w.string(scope.schemaUrl);
    }
    w.finish(scopeSpans);
  }
  w.finish(resourceSpans);
  return w.bytes();
}

// --- Reading ---------------------------------------------------------------------------------------------

/** A decoded span, in the shape the SDK's OTLP serializers and the tests read (see `toReadableSpan`). */
export interface DecodedSpan {
  readonly name: string;
  readonly kind: SpanKind;
  readonly traceId: string;
  readonly spanId: string;
  readonly traceFlags: number;
  readonly traceState: string | undefined;
  readonly parentSpanContext: { readonly traceId: string; readonly spanId: string; readonly traceFlags: number; readonly isRemote: boolean } | undefined;
  readonly startTime: HrTime;
  readonly endTime: HrTime;
  readonly attributes: Attributes;
  readonly droppedAttributesCount: number;
  readonly events: Array<{ name: string; time: HrTime; attributes: Attributes; droppedAttributesCount: number }>;
  readonly droppedEventsCount: number;
  readonly links: Array<{ context: { traceId: string; spanId: string; traceFlags: number; isRemote: boolean; traceState: string | undefined }; attributes: Attributes; droppedAttributesCount: number }>;
  readonly droppedLinksCount: number;
  readonly status: SpanStatus;
  readonly instrumentationScope: InstrumentationScope;
  readonly resourceAttributes: Attributes;
}

/** Every span of an ExportTraceServiceRequest. Throws on bytes that are not one. */
export function decodeTraceRequest(bytes: Uint8Array): DecodedSpan[] {
  const spans: DecodedSpan[] = [];
  const request = new ProtobufReader(bytes);
  while (!request.done()) {
    const { field, wireType } = request.tag();
    if (field !== 1 || wireType !== WireType.LENGTH) {
      request.skip(wireType);
      continue;
    }
    const resourceSpans = request.nested();
    let resourceAttributes: Attributes = {};
    const scopeSpansReaders: ProtobufReader[] = [];
    while (!resourceSpans.done()) {
      const tag = resourceSpans.tag();
      if (tag.field === 1 && tag.wireType === WireType.LENGTH) resourceAttributes = readAttributesMessage(resourceSpans.nested(), 1).attributes;
      else if (tag.field === 2 && tag.wireType === WireType.LENGTH) scopeSpansReaders.push(resourceSpans.nested());
      else resourceSpans.skip(tag.wireType);
    }
    for (const scopeSpans of scopeSpansReaders) {
      let scope: InstrumentationScope = { name: '' };
      const spanReaders: ProtobufReader[] = [];
      let schemaUrl: string | undefined;
      while (!scopeSpans.done()) {
        const tag = scopeSpans.tag();
        if (tag.field === 1 && tag.wireType === WireType.LENGTH) scope = readScope(scopeSpans.nested());
        else if (tag.field === 2 && tag.wireType === WireType.LENGTH) spanReaders.push(scopeSpans.nested());
        else if (tag.field === 3 && tag.wireType === WireType.LENGTH) schemaUrl = scopeSpans.string();
        else scopeSpans.skip(tag.wireType);
      }
      const instrumentationScope = schemaUrl ? { ...scope, schemaUrl } : scope;
      for (const span of spanReaders) spans.push(readSpan(span, instrumentationScope, resourceAttributes));
    }
  }
  return spans;
}

function readScope(r: ProtobufReader): InstrumentationScope {
  let name = '';
  let version: string | undefined;
  while (!r.done()) {
    const { field, wireType } = r.tag();
    if (field === 1 && wireType === WireType.LENGTH) name = r.string();
    else if (field === 2 && wireType === WireType.LENGTH) version = r.string();
    else r.skip(wireType);
  }
  return version === undefined ? { name } : { name, version };
}

function readTime(r: ProtobufReader): HrTime {
  const { low, high } = r.fixed64();
  const ns = (BigInt(high) << 32n) | BigInt(low);
  return [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
}

function readSpan(r: ProtobufReader, instrumentationScope: InstrumentationScope, resourceAttributes: Attributes): DecodedSpan {
  let traceId = '';
  let spanId = '';
  let traceState: string | undefined;
  let parentSpanId: string | undefined;
  let name = '';
  let kind = 0;
  let startTime: HrTime = [0, 0];
  let endTime: HrTime = [0, 0];
  const attributes: Attributes = {};
  let droppedAttributesCount = 0;
  const events: DecodedSpan['events'] = [];
  let droppedEventsCount = 0;
  const links: DecodedSpan['links'] = [];
  let droppedLinksCount = 0;
  let status: SpanStatus = { code: SpanStatusCode.UNSET };
  let flags = 0;
  while (!r.done()) {
    const { field, wireType } = r.tag();
    switch (field) {
      case 1: traceId = r.hex(); break;
      case 2: spanId = r.hex(); break;
      case 3: traceState = r.string(); break;
      case 4: parentSpanId = r.hex(); break;
      case 5: name = r.string(); break;
      case 6: kind = r.varint(); break;
      case 7: startTime = readTime(r); break;
      case 8: endTime = readTime(r); break;
      case 9: readKeyValue(r.nested(), attributes); break;
      case 10: droppedAttributesCount = r.varint(); break;
      case 11: events.push(readEvent(r.nested())); break;
      case 12: droppedEventsCount = r.varint(); break;
      case 13: links.push(readLink(r.nested())); break;
      case 14: droppedLinksCount = r.varint(); break;
      case 15: status = readStatus(r.nested()); break;
      case 16: flags = r.fixed32(); break;
      default: r.skip(wireType);
    }
  }
  const traceFlags = flags & 0xff;
  return {
    name, kind: Math.max(0, kind - 1) as SpanKind, traceId, spanId, traceFlags, traceState,
    parentSpanContext: parentSpanId === undefined || parentSpanId === '' ? undefined : { traceId, spanId: parentSpanId, traceFlags, isRemote: (flags & IS_REMOTE) !== 0 },
    startTime, endTime, attributes, droppedAttributesCount, events, droppedEventsCount, links, droppedLinksCount, status,
    instrumentationScope, resourceAttributes,
  };
}

function readEvent(r: ProtobufReader): DecodedSpan['events'][number] {
  const event: DecodedSpan['events'][number] = { name: '', time: [0, 0], attributes: {}, droppedAttributesCount: 0 };
  while (!r.done()) {
    const { field, wireType } = r.tag();
    if (field === 1) event.time = readTime(r);
    else if (field === 2) event.name = r.string();
    else if (field === 3) readKeyValue(r.nested(), event.attributes);
    else if (field === 4) event.droppedAttributesCount = r.varint();
    else r.skip(wireType);
  }
  return event;
}

function readLink(r: ProtobufReader): DecodedSpan['links'][number] {
  const link: DecodedSpan['links'][number] = { context: { traceId: '', spanId: '', traceFlags: 0, isRemote: false, traceState: undefined }, attributes: {}, droppedAttributesCount: 0 };
  while (!r.done()) {
    const { field, wireType } = r.tag();
    if (field === 1) link.context.traceId = r.hex();
    else if (field === 2) link.context.spanId = r.hex();
    else if (field === 3) link.context.traceState = r.string();
    else if (field === 4) readKeyValue(r.nested(), link.attributes);
    else if (field === 5) link.droppedAttributesCount = r.varint();
    else if (field === 6) {
      const flags = r.fixed32();
      link.context.traceFlags = flags & 0xff;
      link.context.isRemote = (flags & IS_REMOTE) !== 0;
    } else r.skip(wireType);
  }
  return link;
}

function readStatus(r: ProtobufReader): SpanStatus {
  let code = SpanStatusCode.UNSET;
  let message: string | undefined;
  while (!r.done()) {
    const { field, wireType } = r.tag();
    if (field === 2) message = r.string();
    else if (field === 3) code = r.varint();
    else r.skip(wireType);
  }
  return message === undefined ? { code } : { code, message };
}

/** A message whose field `field` is repeated KeyValue (Resource). */
function readAttributesMessage(r: ProtobufReader, field: number): { attributes: Attributes } {
  const attributes: Attributes = {};
  while (!r.done()) {
    const tag = r.tag();
    if (tag.field === field && tag.wireType === WireType.LENGTH) readKeyValue(r.nested(), attributes);
    else r.skip(tag.wireType);
  }
  return { attributes };
}

function readKeyValue(r: ProtobufReader, into: Attributes): void {
  let key = '';
  let value: AttributeValue | undefined;
  while (!r.done()) {
    const { field, wireType } = r.tag();
    if (field === 1) key = r.string();
    else if (field === 2) value = readAnyValue(r.nested());
    else r.skip(wireType);
  }
  if (value !== undefined) into[key] = value;
}

function readAnyValue(r: ProtobufReader): AttributeValue | undefined {
  let value: AttributeValue | undefined;
  while (!r.done()) {
    const { field, wireType } = r.tag();
    if (field === 1) value = r.string();
    else if (field === 2) value = r.varint() !== 0;
    else if (field === 3) value = r.int64();
    else if (field === 4) value = r.double();
    else if (field === 5) {
      const array = r.nested();
      const items: unknown[] = [];
      while (!array.done()) {
        const tag = array.tag();
        if (tag.field === 1) items.push(readAnyValue(array.nested()) ?? null);
        else array.skip(tag.wireType);
      }
      value = items as AttributeValue;
    } else r.skip(wireType);
  }
  return value;
}

/** What the SDK's OTLP serializers (and tests) read of a ReadableSpan, from a decoded span. */
export function toReadableSpan(span: DecodedSpan): ReadableSpan {
  const context = { traceId: span.traceId, spanId: span.spanId, traceFlags: span.traceFlags, traceState: traceStateOf(span.traceState) };
  const duration = hrTimeDiff(span.endTime, span.startTime);
  return {
    ...span,
    resource: { attributes: span.resourceAttributes },
    links: span.links.map((link) => ({ ...link, context: { ...link.context, traceState: traceStateOf(link.context.traceState) } })),
    spanContext: () => context,
    duration,
    ended: true,
  } as unknown as ReadableSpan;
}

const traceStateOf = (serialized: string | undefined) => (serialized === undefined ? undefined : { serialize: () => serialized });

function hrTimeDiff(end: HrTime, start: HrTime): HrTime {
  let seconds = end[0] - start[0];
  let nanos = end[1] - start[1];
  if (nanos < 0) {
    seconds -= 1;
    nanos += 1_000_000_000;
  }
  return [seconds, nanos];
}
