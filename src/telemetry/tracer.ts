/**
 * The engine's tracer: an implementation of the @opentelemetry/api Tracer whose spans cost what the engine
 * needs and no more. The SDK's span copies and validates every attribute as it is set, builds HrTime arrays,
 * runs its processors' hooks and, at export, is copied again into the OTLP encoding; in the engine's CPU
 * profile that was most of telemetry's cost per request (BENCHMARKS.md, 2026-12-03). Here a span keeps its
 * attributes in one plain object, its times as `performance.now()` numbers, and is written once, as OTLP
 * protobuf, when it ends (telemetry/span-pipeline.ts); a value of no attribute type is left out then.
 *
 * What it keeps of the SDK: the API's contract (context, parents, links, events, status, exceptions, ended
 * spans refusing changes), the samplers (the SDK's own, configured by OTEL_TRACES_SAMPLER; the default
 * parent-based always-on is decided inline), the span limits (OTEL_SPAN_*_LIMIT and OTEL_ATTRIBUTE_*_LIMIT)
 * and tracing suppression.
 */
import {
  SamplingDecision, SpanKind, SpanStatusCode, TraceFlags, context, isSpanContextValid, trace,
  type Attributes, type AttributeValue, type Context, type Exception, type Link, type Span, type SpanContext,
  type SpanOptions, type SpanStatus, type TimeInput, type TraceState, type Tracer, type TracerProvider,
} from '@opentelemetry/api';
import { isTracingSuppressed } from '@opentelemetry/core';
import type { Sampler } from '@opentelemetry/sdk-trace';
import { ATTR_EXCEPTION_MESSAGE, ATTR_EXCEPTION_STACKTRACE, ATTR_EXCEPTION_TYPE } from '@opentelemetry/semantic-conventions';
import { encodeScope, type EncodableEvent, type EncodableLink, type EncodableSpan, type InstrumentationScope } from './otlp-spans.ts';

export interface SpanLimits {
  /** Attributes per span, event or link; more are counted as dropped. */
  readonly attributeCountLimit: number;
  /** Longest string attribute value kept; longer ones are cut. */
  readonly attributeValueLengthLimit: number;
  readonly eventCountLimit: number;
  readonly linkCountLimit: number;
}

const DEFAULT_SPAN_LIMITS: SpanLimits = { attributeCountLimit: 128, attributeValueLengthLimit: Infinity, eventCountLimit: 128, linkCountLimit: 128 };

/** The span limits of the OTEL_* variables (the span-specific one first), else the SDK's defaults. */
export function spanLimitsFromEnv(env: NodeJS.ProcessEnv): SpanLimits {
  const limit = (fallback: number, ...names: string[]) => {
    for (const name of names) {
      const value = Number(env[name]);
      if (env[name] !== undefined && Number.isInteger(value) && value >= 0) return value;
    }
    return fallback;
  };
  return {
    attributeCountLimit: limit(128, 'OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT', 'OTEL_ATTRIBUTE_COUNT_LIMIT'),
    attributeValueLengthLimit: limit(Infinity, 'OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT', 'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT'),
    eventCountLimit: limit(128, 'OTEL_SPAN_EVENT_COUNT_LIMIT'),
    linkCountLimit: limit(128, 'OTEL_SPAN_LINK_COUNT_LIMIT'),
  };
}

/** Where ended spans go (telemetry/span-pipeline.ts; tests use an in-memory one). */
export interface SpanSink {
  onEnd(span: RecordingSpan): void;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** A tracer's scope, with its OTLP encoding made once. */
export interface TracerScope extends InstrumentationScope {
  readonly encoded: Uint8Array;
}

// --- Ids --------------------------------------------------------------------------------------------------

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** A random id of `count` 32-bit words, never all zero (the invalid id). */
function randomWords(count: 2 | 4): number[] {
  const words = count === 4
    ? [(Math.random() * 4294967296) >>> 0, (Math.random() * 4294967296) >>> 0, (Math.random() * 4294967296) >>> 0, (Math.random() * 4294967296) >>> 0]
    : [(Math.random() * 4294967296) >>> 0, (Math.random() * 4294967296) >>> 0];
  return words[0] || words[1] || words[2] || words[3] ? words : randomWords(count);
}

function hexOf(words: readonly number[]): string {
  let hex = '';
  for (const word of words) hex += HEX_BYTE[word >>> 24]! + HEX_BYTE[(word >>> 16) & 255]! + HEX_BYTE[(word >>> 8) & 255]! + HEX_BYTE[word & 255]!;
  return hex;
}

function wordsOf(hex: string): number[] {
  const words: number[] = [];
  for (let i = 0; i < hex.length; i += 8) words.push(parseInt(hex.slice(i, i + 8), 16) >>> 0);
  return words;
}

// --- Time -------------------------------------------------------------------------------------------------

/** A TimeInput as milliseconds since performance.timeOrigin (the clock spans keep). */
function toPerfMs(time: TimeInput): number {
  if (typeof time === 'number') {
    // The API allows both epoch and performance.now() milliseconds; like the SDK, tell them apart by size.
    return time < performance.timeOrigin ? time : time - performance.timeOrigin;
  }
  if (Array.isArray(time)) return time[0] * 1000 + time[1] / 1e6 - performance.timeOrigin;
  return time.getTime() - performance.timeOrigin;
}

function isTimeInput(value: unknown): value is TimeInput {
  return typeof value === 'number' || value instanceof Date
    || (Array.isArray(value) && value.length === 2 && typeof value[0] === 'number' && typeof value[1] === 'number');
}

// --- Spans ------------------------------------------------------------------------------------------------

/** An event's or a link's attributes within the limits, and how many were dropped. */
function limitedAttributes(attributes: Attributes | undefined, limits: SpanLimits): { kept: Attributes; dropped: number } {
  const kept: Attributes = {};
  let count = 0;
  let dropped = 0;
  for (const key in attributes) {
    const value = attributes[key];
    if (value === undefined || value === null || key.length === 0) continue;
    if (kept[key] === undefined) {
      if (count >= limits.attributeCountLimit) {
        dropped++;
        continue;
      }
      count++;
    }
    kept[key] = limits.attributeValueLengthLimit === Infinity ? value : truncate(value, limits.attributeValueLengthLimit);
  }
  return { kept, dropped };
}

function truncate(value: AttributeValue, limit: number): AttributeValue {
  if (typeof value === 'string') return value.length > limit ? value.slice(0, limit) : value;
  if (Array.isArray(value)) return value.map((item) => (typeof item === 'string' && item.length > limit ? item.slice(0, limit) : item)) as AttributeValue;
  return value;
}

export class RecordingSpan implements Span, EncodableSpan {
  name: string;
  readonly kind: SpanKind;
  readonly traceIdWords: readonly number[];
  readonly spanIdWords: readonly number[];
  readonly traceFlags: number;
  readonly traceState: TraceState | undefined;
  readonly parentSpanIdWords: readonly number[] | undefined;
  readonly parentIsRemote: boolean;
  readonly startTime: number;
  endTime = 0;
  readonly attributes: Attributes = {};
  #attributeCount = 0;
  droppedAttributesCount = 0;
  events: EncodableEvent[] | undefined;
  droppedEventsCount = 0;
  links: EncodableLink[] | undefined;
  droppedLinksCount = 0;
  status: SpanStatus = { code: SpanStatusCode.UNSET };
  readonly scope: TracerScope;
  #ended = false;
  #context: SpanContext | undefined;
  readonly #sink: SpanSink;
  readonly #limits: SpanLimits;

  constructor(init: {
    name: string; kind: SpanKind; traceIdWords: readonly number[]; spanIdWords: readonly number[]; traceFlags: number; traceState: TraceState | undefined;
    parentSpanIdWords: readonly number[] | undefined; parentIsRemote: boolean; startTime: number; scope: TracerScope; sink: SpanSink; limits: SpanLimits;
  }) {
    this.name = init.name;
    this.kind = init.kind;
    this.traceIdWords = init.traceIdWords;
    this.spanIdWords = init.spanIdWords;
    this.traceFlags = init.traceFlags;
    this.traceState = init.traceState;
    this.parentSpanIdWords = init.parentSpanIdWords;
    this.parentIsRemote = init.parentIsRemote;
    this.startTime = init.startTime;
    this.scope = init.scope;
    this.#sink = init.sink;
    this.#limits = init.limits;
  }

  get traceStateHeader(): string | undefined {
    return this.traceState?.serialize();
  }

  /** Made when first asked for (most spans never are: their children read the words). */
  spanContext(): SpanContext {
    return (this.#context ??= {
      traceId: hexOf(this.traceIdWords), spanId: hexOf(this.spanIdWords), traceFlags: this.traceFlags, ...(this.traceState && { traceState: this.traceState }),
    });
  }

  setAttribute(key: string, value: AttributeValue): this {
    if (!this.#ended) this.#add(key, value);
    return this;
  }

  setAttributes(attributes: Attributes): this {
    if (!this.#ended) for (const key in attributes) this.#add(key, attributes[key]);
    return this;
  }

  /** As the SDK: no value (or no key) is ignored, a new key past the count limit is dropped and counted. */
  #add(key: string, value: AttributeValue | undefined): void {
    if (value === undefined || value === null || key.length === 0) return;
    const attributes = this.attributes;
    if (attributes[key] === undefined) {
      if (this.#attributeCount >= this.#limits.attributeCountLimit) {
        this.droppedAttributesCount++;
        return;
      }
      this.#attributeCount++;
    }
    attributes[key] = this.#limits.attributeValueLengthLimit === Infinity ? value : truncate(value, this.#limits.attributeValueLengthLimit);
  }

  addEvent(name: string, attributesOrTime?: Attributes | TimeInput, time?: TimeInput): this {
    if (this.#ended) return this;
    if (this.#limits.eventCountLimit === 0) {
      this.droppedEventsCount++;
      return this;
    }
    let attributes: Attributes | undefined;
    if (isTimeInput(attributesOrTime)) time = attributesOrTime;
    else attributes = attributesOrTime;
    const events = (this.events ??= []);
    // As the SDK: past the limit the oldest event makes room.
    if (events.length >= this.#limits.eventCountLimit) {
      this.droppedEventsCount++;
      events.shift();
    }
    const { kept, dropped } = limitedAttributes(attributes, this.#limits);
    events.push({ name, time: time === undefined ? performance.now() : toPerfMs(time), attributes: kept, droppedAttributesCount: dropped });
    return this;
  }

  addLink(link: Link): this {
    if (this.#ended) return this;
    const links = (this.links ??= []);
    if (links.length >= this.#limits.linkCountLimit) {
      this.droppedLinksCount++;
      return this;
    }
    const { kept, dropped } = limitedAttributes(link.attributes, this.#limits);
    links.push({
      traceId: link.context.traceId, spanId: link.context.spanId, traceFlags: link.context.traceFlags,
      traceState: link.context.traceState?.serialize(), isRemote: link.context.isRemote === true, attributes: kept, droppedAttributesCount: dropped,
    });
    return this;
  }

  addLinks(links: Link[]): this {
    for (const link of links) this.addLink(link);
    return this;
  }

  setStatus(status: SpanStatus): this {
    // As the SDK: UNSET changes nothing, OK is final, a message belongs to ERROR only.
    if (this.#ended || status.code === SpanStatusCode.UNSET || this.status.code === SpanStatusCode.OK) return this;
    this.status = status.code === SpanStatusCode.ERROR && typeof status.message === 'string' ? { code: status.code, message: status.message } : { code: status.code };
    return this;
  }

  updateName(name: string): this {
    if (!this.#ended) this.name = name;
    return this;
  }

  end(endTime?: TimeInput): void {
    if (this.#ended) return;
    this.#ended = true;
    this.endTime = endTime === undefined ? performance.now() : toPerfMs(endTime);
    if (this.endTime < this.startTime) this.endTime = this.startTime;
    this.#sink.onEnd(this);
  }

  isRecording(): boolean {
    return !this.#ended;
  }

  recordException(exception: Exception, time?: TimeInput): void {
    const attributes: Attributes = {};
    if (typeof exception === 'string') attributes[ATTR_EXCEPTION_MESSAGE] = exception;
    else if (exception) {
      if (exception.code) attributes[ATTR_EXCEPTION_TYPE] = exception.code.toString();
      else if (exception.name) attributes[ATTR_EXCEPTION_TYPE] = exception.name;
      if (exception.message) attributes[ATTR_EXCEPTION_MESSAGE] = exception.message;
      if (exception.stack) attributes[ATTR_EXCEPTION_STACKTRACE] = exception.stack;
    }
    if (attributes[ATTR_EXCEPTION_TYPE] || attributes[ATTR_EXCEPTION_MESSAGE]) this.addEvent('exception', attributes, time);
  }
}

// --- Tracer and provider ----------------------------------------------------------------------------------

export interface TracerOptions {
  readonly sink: SpanSink;
  /** The SDK sampler to consult; undefined: parent-based always-on, decided without a call. */
  readonly sampler?: Sampler | undefined;
  readonly limits?: SpanLimits;
}

export class SwitchyardTracer implements Tracer {
  readonly scope: TracerScope;
  readonly #sink: SpanSink;
  readonly #sampler: Sampler | undefined;
  readonly #limits: SpanLimits;

  constructor(scope: InstrumentationScope, options: TracerOptions) {
    this.scope = { ...scope, encoded: encodeScope(scope) };
    this.#sink = options.sink;
    this.#sampler = options.sampler;
    this.#limits = options.limits ?? DEFAULT_SPAN_LIMITS;
  }

  startSpan(name: string, options: SpanOptions = {}, ctx: Context = context.active()): Span {
    if (isTracingSuppressed(ctx)) return trace.wrapSpanContext({ traceId: hexOf(randomWords(4)), spanId: hexOf(randomWords(2)), traceFlags: TraceFlags.NONE });
    const parent = options.root ? undefined : trace.getSpan(ctx);
    let traceIdWords: readonly number[] | undefined;
    let parentSpanIdWords: readonly number[] | undefined;
    let parentIsRemote = false;
    let parentSampled = true;
    let traceState: TraceState | undefined;
    if (parent instanceof RecordingSpan) {
      traceIdWords = parent.traceIdWords;
      parentSpanIdWords = parent.spanIdWords;
      traceState = parent.traceState;
      parentSampled = (parent.traceFlags & TraceFlags.SAMPLED) !== 0;
    } else if (parent) {
      const parentContext = parent.spanContext();
      if (isSpanContextValid(parentContext)) {
        traceIdWords = wordsOf(parentContext.traceId);
        parentSpanIdWords = wordsOf(parentContext.spanId);
        parentIsRemote = parentContext.isRemote === true;
        traceState = parentContext.traceState;
        parentSampled = (parentContext.traceFlags & TraceFlags.SAMPLED) !== 0;
      }
    }
    traceIdWords ??= randomWords(4);
    const spanIdWords = randomWords(2);
    const kind = options.kind ?? SpanKind.INTERNAL;
    let sampled = parentSampled;
    let samplerAttributes: Attributes | undefined;
    if (this.#sampler) {
      const result = this.#sampler.shouldSample(ctx, hexOf(traceIdWords), name, kind, options.attributes ?? {}, options.links ?? []);
      sampled = result.decision === SamplingDecision.RECORD_AND_SAMPLED;
      traceState = result.traceState ?? traceState;
      samplerAttributes = result.attributes;
    }
    if (!sampled) return trace.wrapSpanContext({ traceId: hexOf(traceIdWords), spanId: hexOf(spanIdWords), traceFlags: TraceFlags.NONE, ...(traceState && { traceState }) });
    const span = new RecordingSpan({
      name, kind, traceIdWords, spanIdWords, traceFlags: TraceFlags.SAMPLED, traceState, parentSpanIdWords, parentIsRemote,
      startTime: options.startTime === undefined ? performance.now() : toPerfMs(options.startTime),
      scope: this.scope, sink: this.#sink, limits: this.#limits,
    });
    if (options.attributes) span.setAttributes(options.attributes);
    if (samplerAttributes) span.setAttributes(samplerAttributes);
    if (options.links) span.addLinks(options.links);
    return span;
  }

  startActiveSpan<F extends (span: Span) => unknown>(name: string, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, ctx: Context, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, a: F | SpanOptions, b?: F | Context, c?: F): ReturnType<F> {
    const fn = (c ?? b ?? a) as F;
    const options = typeof a === 'function' ? {} : a;
    const ctx = c ? (b as Context) : context.active();
    const span = this.startSpan(name, options, ctx);
    return context.with(trace.setSpan(ctx, span), fn as (span: Span) => ReturnType<F>, undefined, span);
  }
}

export class SwitchyardTracerProvider implements TracerProvider {
  readonly #options: TracerOptions;
  readonly #tracers = new Map<string, SwitchyardTracer>();

  constructor(options: TracerOptions) {
    this.#options = options;
  }

  getTracer(name: string, version?: string, options?: { schemaUrl?: string }): SwitchyardTracer {
    const key = `${name}@${version ?? ''}:${options?.schemaUrl ?? ''}`;
    let tracer = this.#tracers.get(key);
    if (!tracer) {
      tracer = new SwitchyardTracer({ name, ...(version && { version }), ...(options?.schemaUrl && { schemaUrl: options.schemaUrl }) }, this.#options);
      this.#tracers.set(key, tracer);
    }
    return tracer;
  }

  forceFlush(): Promise<void> {
    return this.#options.sink.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.#options.sink.shutdown();
  }
}
