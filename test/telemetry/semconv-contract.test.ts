/**
 * Semantic-convention hygiene, checked on what the engine really emits:
 *   - every span the engine makes is in the catalogue (SPANS), and carries only the attributes (and events,
 *     with their attributes) the catalogue lists for it: namespaced names, `switchyard.*` or the registry's;
 *   - every metric the engine exports is a catalogue metric;
 *   - the catalogue against the registry (@opentelemetry/semantic-conventions, its incubating entry point):
 *     every name it claims from the registry (span attributes outside `switchyard.*`, metrics marked
 *     `registry`, their attributes) is a registry name that is not deprecated, and no metric of our own
 *     takes a registry metric's name.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { SpanKind } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import * as registry from '@opentelemetry/semantic-conventions/incubating';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVERY_SPAN_ATTRIBUTES, METRICS, SPANS, type MetricSpec, type SpanSpec } from '../../src/telemetry/catalog.ts';
import { TICKET, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

/**
 * Registry names (attributes and metrics) and whether every declaration of each is deprecated. A name whose
 * only note is that it moved to another semantic-conventions repository (the GenAI conventions did, in
 * 1.40) is not deprecated: the name lives on there, unchanged.
 */
function readRegistry(): { attributes: Map<string, boolean>; metrics: Map<string, boolean> } {
  const dist = dirname(createRequire(import.meta.url).resolve('@opentelemetry/semantic-conventions/incubating'));
  const attributes = new Map<string, boolean>();
  const metrics = new Map<string, boolean>();
  for (const file of ['stable_attributes.d.cts', 'experimental_attributes.d.cts', 'stable_metrics.d.cts', 'experimental_metrics.d.cts']) {
    const text = readFileSync(join(dist, file), 'utf8');
    for (const [, doc, constant, value] of text.matchAll(/\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*declare const ((?:ATTR|METRIC)_\w+): "([^"]+)";/g)) {
      const into = constant!.startsWith('ATTR_') ? attributes : metrics;
      const deprecated = doc!.includes('@deprecated') && !/@deprecated Moved to the \[OpenTelemetry [^\]]*semantic conventions repository\]/.test(doc!);
      into.set(value!, (into.get(value!) ?? true) && deprecated);
    }
  }
  return { attributes, metrics };
}
const REGISTRY = readRegistry();
const SPAN_BY_NAME = new Map<string, { key: string; spec: SpanSpec }>(Object.entries(SPANS).map(([key, spec]) => [spec.name, { key, spec: spec as SpanSpec }]));
const ours = (name: string) => name.startsWith('switchyard.');
/** The catalogue name of an emitted span: an HTTP server span is named by its method and route, per request. */
const catalogueNameOf = (span: ReadableSpan) => (span.kind === SpanKind.SERVER ? SPANS.httpServer.name : span.name);

describe('the catalogue against the semantic conventions\' registry', () => {
  it('the registry was read (the package\'s declaration files have the shape this test parses)', () => {
    expect(REGISTRY.attributes.get('gen_ai.request.model')).toBe(false);
    expect(REGISTRY.attributes.get('state'), 'a deprecated name is known as deprecated').toBe(true);
    expect(REGISTRY.metrics.get('gen_ai.client.token.usage')).toBe(false);
    expect(REGISTRY.attributes.size).toBeGreaterThan(500);
    // What the package exports agrees with what was read.
    expect(REGISTRY.attributes.has(registry.ATTR_PROCESS_EXIT_CODE) && REGISTRY.metrics.has(registry.METRIC_HTTP_SERVER_REQUEST_DURATION)).toBe(true);
  });

  it('every span attribute is namespaced: switchyard.* for our own, else a registry name that is not deprecated', () => {
    const problems: string[] = [];
    for (const spec of Object.values(SPANS) as SpanSpec[]) {
      const names = [...spec.attributes, ...Object.values(spec.events ?? {}).flat()];
      for (const name of names) {
        if (!name.includes('.')) problems.push(`${spec.name}: ${name} has no namespace`);
        else if (!ours(name) && !REGISTRY.attributes.has(name)) problems.push(`${spec.name}: ${name} is neither switchyard.* nor a registry attribute`);
        else if (REGISTRY.attributes.get(name) === true) problems.push(`${spec.name}: ${name} is deprecated in the registry`);
      }
    }
    for (const name of EVERY_SPAN_ATTRIBUTES) if (REGISTRY.attributes.get(name) !== false) problems.push(`${name}: not a current registry attribute`);
    expect(problems).toEqual([]);
  });

  it('metrics that claim a registry name have it, with registry attributes; our own metrics take no registry metric name', () => {
    const problems: string[] = [];
    for (const spec of Object.values(METRICS) as MetricSpec[]) {
      const claimed = REGISTRY.metrics.get(spec.otelName);
      if (spec.registry) {
        if (claimed === undefined) problems.push(`${spec.otelName}: marked registry but not a registry metric`);
        if (claimed === true) problems.push(`${spec.otelName}: deprecated in the registry`);
      } else if (claimed !== undefined) {
        problems.push(`${spec.otelName}: a registry metric's name on a metric of our own (mark it registry, with the registry's shape, or rename it)`);
      }
      for (const attribute of Object.values(spec.attributes ?? {})) {
        if (!ours(attribute.name) && REGISTRY.attributes.get(attribute.name) !== false) problems.push(`${spec.otelName}: attribute ${attribute.name} is not a current registry attribute`);
      }
    }
    expect(problems).toEqual([]);
    expect((Object.values(METRICS) as MetricSpec[]).filter((spec) => spec.registry).map((spec) => spec.otelName)).toEqual(expect.arrayContaining([
      'http.server.request.duration', 'gen_ai.client.token.usage', 'gen_ai.client.operation.duration',
    ]));
  });

  it('the check is real: a bare name, an unknown dotted name and a deprecated one are refused', () => {
    const refused = (name: string) => !name.includes('.') || (!ours(name) && REGISTRY.attributes.get(name) !== false);
    expect(['timeout_ms', 'gen_ai.request.modle', 'state', 'db.connection_string'].map(refused)).toEqual([true, true, true, true]);
    expect(['switchyard.wait.outcome', 'gen_ai.tool.name', 'process.exit.code'].map(refused)).toEqual([false, false, false]);
  });
});

describe('what the engine emits keeps the catalogue', () => {
  let t: TestEngine;
  let fixture: TestEngine;
  let spans: ReadableSpan[];
  let metricNames: Set<string>;
  beforeAll(async () => {
    t = await startTestEngine();
    fixture = await startTestEngine({ projectDir: 'test/fixtures/project' });
    // Every kind of run, the ways they end, and every span kind: sync and async workflows, a failed tool,
    // agents in and out of workflows, a task on its own, a sync wait that runs out, a pause and its resume.
    await t.post('/api/v1/workflows/support_triage/executions/sync', { input: TICKET });
    await t.post('/api/v1/workflows/support_triage/executions/sync', { input: { ...TICKET, fault: 'crash' } });
    await t.post('/api/v1/workflows/support_triage/executions/sync', { input: { ...TICKET, fault: 'model_error' } });
    await t.post('/api/v1/workflows/quick_answer/executions/sync', { input: { question: 'Do you have an API?' } });
    await t.post('/api/v1/agents/faq_bot/executions/sync', { input: { question: 'price?' } });
    await t.post('/api/v1/tasks/customer_lookup/executions/sync', { input: { email: TICKET.email } });
    await t.post('/api/v1/workflows/support_triage/executions/sync?timeout_ms=50', { input: { ...TICKET, fault: 'slow', delay_ms: 300 } });
    const paused = await t.post('/api/v1/workflows/refund_approval/executions/sync', { input: { email: TICKET.email, amount: 5 } });
    await t.post(`/api/v1/executions/${paused.body.id}/resume`);
    await eventually(() => t.engine.get(paused.body.id), (r) => r?.status === 'success');
    await fixture.post('/api/v1/agents/repeater/executions/sync', { input: {} });
    await fixture.post('/api/v1/workflows/tool_timeout/executions/sync', { input: {} });
    // Let the runs still going (the one whose sync wait ran out) finish.
    await eventually(async () => t.engine.liveCount + fixture.engine.liveCount, (n) => n === 0, 20_000);
    spans = [...t.observed.spans(), ...fixture.observed.spans()];
    metricNames = new Set();
    for (const observed of [t.observed, fixture.observed]) {
      const { resourceMetrics } = await observed.collectMetrics();
      for (const scope of resourceMetrics.scopeMetrics) for (const metric of scope.metrics) metricNames.add(metric.descriptor.name);
    }
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await fixture?.close();
  });

  it('made every span of the catalogue', () => {
    expect(new Set(spans.map(catalogueNameOf))).toEqual(new Set(Object.values(SPANS).map((s) => s.name)));
  });

  it('HTTP server spans are named as the conventions say: `{method} {route}`, the method alone without a route', () => {
    const servers = spans.filter((s) => s.kind === SpanKind.SERVER);
    expect(servers.length).toBeGreaterThan(10);
    for (const span of servers) {
      const route = span.attributes['http.route'];
      expect(span.name).toBe(route === undefined ? span.attributes['http.request.method'] : `${span.attributes['http.request.method']} ${route}`);
    }
    expect(spans.filter((s) => s.kind === SpanKind.SERVER || s.name.includes(' ')).length).toBe(servers.length);
  });

  it('every span attribute and event is one the catalogue lists for that span', () => {
    const problems = new Set<string>();
    for (const span of spans) {
      const entry = SPAN_BY_NAME.get(catalogueNameOf(span));
      if (!entry) {
        problems.add(`${span.name}: not in the catalogue`);
        continue;
      }
      const allowed = new Set<string>([...entry.spec.attributes, ...EVERY_SPAN_ATTRIBUTES]);
      for (const name of Object.keys(span.attributes)) if (!allowed.has(name)) problems.add(`${span.name}: attribute ${name}`);
      for (const event of span.events) {
        if (event.name === 'exception') continue; // recordException: the registry's exception.* attributes
        const listed = entry.spec.events?.[event.name];
        if (!listed) {
          problems.add(`${span.name}: event ${event.name}`);
          continue;
        }
        for (const name of Object.keys(event.attributes ?? {})) if (!listed.includes(name)) problems.add(`${span.name}: event ${event.name} attribute ${name}`);
      }
    }
    expect([...problems]).toEqual([]);
  });

  it('every metric exported is a catalogue metric', () => {
    const catalogued = new Set((Object.values(METRICS) as MetricSpec[]).map((spec) => spec.otelName));
    expect([...metricNames].filter((name) => !catalogued.has(name))).toEqual([]);
    expect(metricNames.size).toBeGreaterThan(20);
  });
});
