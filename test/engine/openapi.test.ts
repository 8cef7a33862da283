/**
 * The OpenAPI document: docs/openapi.json is what the code generates; an engine serves its own (behind the
 * key) with its project's workflows; every route express has is in it and nothing else is; real answers
 * of a real engine match the schemas it states.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type express from 'express';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { Authenticator } from '../../src/api/auth.ts';
import { openApiDocument } from '../../src/api/openapi.ts';
import { OPENAPI_FILE, renderOpenApiFile } from '../../scripts/openapi.ts';
import { startTestEngine, type TestEngine } from '../support/engine.ts';

type Json = Record<string, any>;
const committed = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8')) as Json;

let t: TestEngine;
let served: Json;
beforeAll(async () => {
  t = await startTestEngine();
  served = (await t.get('/api/v1/openapi.json')).body;
});
afterAll(async () => t.close());

describe('the OpenAPI document', () => {
  it('docs/openapi.json is what the code generates (run `npm run openapi` after changing the API)', () => {
    expect(readFileSync(OPENAPI_FILE, 'utf8')).toBe(renderOpenApiFile());
  });

  it('is served behind the key, with the engine\'s own bounds and a start path per workflow of its project', async () => {
    expect((await t.get('/api/v1/openapi.json', { authorization: '' })).status).toBe(401);
    expect(served).toEqual(openApiDocument({ bounds: { syncTimeoutMaxMs: 300_000 }, definitions: t.engine.definitions }));
    // Everything in the committed document is in the served one, unchanged, but for the examples of target ids.
    const withoutExamples = (document: Json) => JSON.parse(JSON.stringify(document['paths'], (key, value) => (key === 'examples' ? undefined : value)));
    const servedPaths = withoutExamples(served);
    for (const [path, item] of Object.entries(committed['paths'] as Json)) expect(servedPaths[path], path).toEqual(item);
    expect(Object.keys(served['paths']['/api/v1/agents/{id}/executions']['post']['parameters'][0]['examples'])).toEqual([...t.engine.definitions.agents.keys()]);
    expect(served['components']).toEqual(committed['components']);
    const body = served['paths']['/api/v1/workflows/support_triage/executions']['post']['requestBody']['content']['application/json']['schema'];
    expect(body.properties.input).toMatchObject(t.engine.definitions.workflows.get('support_triage')!.input_schema as Json);
    expect(body.required).toEqual(['input']);
  });

  it('names every route the app has, with its methods, and no other', () => {
    const app = routesOf(createApp({
      engine: t.engine, telemetry: t.observed.telemetry, logger: pino({ level: 'silent' }), authenticator: new Authenticator([]),
      bodyLimit: '1mb', syncTimeoutMs: 1_000, syncTimeoutMaxMs: 1_000, isReady: () => true,
    }));
    const documented = Object.entries(committed['paths'] as Json)
      .flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`)).sort();
    expect(app).toEqual(documented);
  });

  it('real answers match the schemas it states for them', async () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    ajv.addSchema({ $id: 'doc', components: committed['components'] });
    const check = (schema: string, value: unknown) => {
      const valid = ajv.validate({ $ref: `doc#/components/schemas/${schema}` }, value);
      expect(valid, `${schema}: ${ajv.errorsText()}\n${JSON.stringify(value).slice(0, 500)}`).toBe(true);
    };
    const done = await t.post('/api/v1/workflows/quick_answer/executions/sync', { input: { question: 'hi' } });
    expect(done.status).toBe(200);
    check('Execution', done.body);
    const started = await t.post('/api/v1/workflows/refund_approval/executions', { input: { email: 'ada@analytical.example', amount: 10 } });
    expect(started.status).toBe(202);
    expect(started.headers.get('location')).toBe(`/api/v1/executions/${started.body.id}`);
    check('Execution', started.body);
    check('ExecutionList', (await t.get('/api/v1/executions?limit=5')).body);
    check('ExecutionList', (await t.get('/api/v1/executions?limit=5&include=io')).body);
    check('Definitions', (await t.get('/api/v1/definitions')).body);
    const conflict = await t.post(`/api/v1/executions/${done.body.id}/cancel`);
    expect(conflict.status).toBe(409);
    check('ExecutionProblem', conflict.body);
    const timedOut = await t.post('/api/v1/workflows/refund_approval/executions/sync?timeout_ms=50', { input: { email: 'ada@analytical.example', amount: 10 } });
    expect(timedOut.status).toBe(408);
    check('ExecutionProblem', timedOut.body);
    for (const bad of [await t.get('/api/v1/executions/nope'), await t.get('/api/v1/executions?limit=0'), await t.get('/api/v1/definitions', { authorization: '' })]) {
      expect(bad.headers.get('content-type')).toContain('application/problem+json');
      check('Problem', bad.body);
    }
  });

  it('an undeclared method on a documented path is 405 with Allow', async () => {
    for (const [method, path, allow] of [['DELETE', '/api/v1/executions/x', 'GET'], ['PUT', '/api/v1/definitions', 'GET'], ['GET', '/api/v1/executions/x/cancel', 'POST'], ['PATCH', '/healthz', 'GET']] as const) {
      const response = await fetch(t.url + path, { method, headers: { authorization: 'Bearer test-key-0123456789abcdef' } });
      expect(response.status, `${method} ${path}`).toBe(405);
      expect(response.headers.get('allow')).toBe(allow);
    }
  });
});

/** `METHOD /path/{param}` of each route the app answers, its 405 catch-alls aside (`app.all` adds every method of Node's list). */
function routesOf(app: express.Express): string[] {
  const stack = (app as unknown as { router: { stack: Array<{ route?: { path: string; methods: Record<string, boolean> } }> } }).router.stack;
  return stack.flatMap(({ route }) => (route === undefined || Object.keys(route.methods).length > 10 ? [] : Object.keys(route.methods)
    .map((method) => `${method.toUpperCase()} ${route.path.replace(/:([a-z]+)/g, '{$1}')}`))).sort();
}
