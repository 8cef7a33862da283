/**
 * The OpenAPI 3.1 document of the HTTP API, built from the zod schemas the routes validate with
 * (src/api/schemas.ts) by zod's own JSON Schema conversion: nothing here restates a field, a bound or an enum.
 *
 * Two uses: `docs/openapi.json` (project-independent: every target is `{id}`, whose input is described by
 * GET /api/v1/definitions) is written by `npm run openapi` and kept in step by a test; an engine serves its
 * own at GET /api/v1/openapi.json, which adds one concrete start path per workflow with an `input_schema`,
 * whose body's `input` is that schema (OpenAPI matches a concrete path before a templated one).
 */
import { z } from 'zod';
import type { Definitions } from '../engine/definitions.ts';
import {
  Definitions as DefinitionsSchema, Execution, ExecutionList, ExecutionProblem, Health, listQuery, MAX_LIST_LIMIT, Problem,
  startBody, syncQuery, type RequestBounds,
} from './schemas.ts';

type JsonObject = Record<string, unknown>;

export interface DocumentOptions {
  readonly bounds: RequestBounds;
  /** This engine's project: adds a start path per workflow with an input schema. Absent: the generic document. */
  readonly definitions?: Definitions;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const TARGET_KINDS = [['workflows', 'workflow'], ['tasks', 'task'], ['agents', 'agent']] as const;

/** Component schemas, converted together so that one that uses another refers to it. */
function componentSchemas(bounds: RequestBounds): JsonObject {
  const convert = (io: 'input' | 'output', entries: Record<string, z.ZodType>) => {
    const registry = z.registry<{ id: string }>();
    for (const [id, schema] of Object.entries(entries)) registry.add(schema, { id });
    return z.toJSONSchema(registry, { io, target: 'draft-2020-12', uri: (id) => `#/components/schemas/${id}` }).schemas;
  };
  // Requests as the routes read them (a default makes a field optional); answers as the engine writes them.
  const requests = convert('input', { StartRequest: startBody(bounds) });
  const answers = convert('output', { Execution, ExecutionList, ExecutionProblem, Problem, Definitions: DefinitionsSchema, Health });
  const strip = (schema: JsonObject) => {
    const { $schema: _schema, $id: _id, ...rest } = schema;
    return rest;
  };
  return Object.fromEntries(Object.entries({ ...requests, ...answers }).map(([id, s]) => [id, strip(s as JsonObject)]));
}

/** Query parameters from an object schema: each field's JSON Schema, required unless it may be left out. */
function queryParameters(schema: z.ZodObject): JsonObject[] {
  const converted = z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12' }) as { properties: Record<string, JsonObject>; required?: string[] };
  return Object.entries(converted.properties).map(([name, { description, ...property }]) => ({
    name, in: 'query', required: converted.required?.includes(name) ?? false, ...(description ? { description } : {}), schema: property,
  }));
}

const problemContent = (schema = ref('Problem')) => ({ 'application/problem+json': { schema } });
const problem = (description: string, extra: JsonObject = {}) => ({ description, content: problemContent(), ...extra });
const header = (description: string, schema: JsonObject = { type: 'string' }) => ({ description, schema });

const responses = {
  400: problem('The request does not match this document, or it carries two Authorization headers: the detail says what to fix.'),
  401: problem('No valid API key.', { headers: { 'WWW-Authenticate': header('`Bearer realm="switchyard"`') } }),
  403: problem('Key-less mode only (no keys configured, loopback only): a Host that is not a loopback address, or an Origin that is not a loopback one (a web page in a local browser).'),
  404: problem('No such target or execution.'),
  405: problem('A method this path does not take.', { headers: { Allow: header('The methods it takes.') } }),
  409: { description: 'The execution is not in a state that allows this; `execution` shows it.', content: problemContent(ref('ExecutionProblem')) },
  413: problem('The body exceeds `SWITCHYARD_BODY_LIMIT` (refused before it is read when Content-Length says so).'),
  415: problem('A body that is not application/json; in key-less mode, any POST without Content-Type: application/json, whatever its body.'),
  422: problem('The input does not match the workflow\'s `input_schema` (each problem in `errors`), or `parent_execution_id` names no execution.'),
  429: problem('This key (or the key-less caller) already has `SWITCHYARD_MAX_IN_FLIGHT_PER_KEY` executions pending or running, across every engine on the database: retry after Retry-After seconds (also `retry_after_seconds`).', { headers: { 'Retry-After': header('Seconds to wait.', { type: 'integer', minimum: 0 }) } }),
  503: problem('The engine is shutting down, or its execution store cannot be used.'),
};
const pick = (...codes: (keyof typeof responses)[]) => Object.fromEntries(codes.map((code) => [code, responses[code]]));

const execution = (description: string, extra: JsonObject = {}) => ({ description, content: { 'application/json': { schema: ref('Execution') } }, ...extra });

/** Where an answer naming an execution leads: read it, cancel it, resume it (Schemathesis's stateful phase follows these). */
function executionLinks(idPointer: string): JsonObject {
  const to = (operationId: string) => ({ operationId, parameters: { id: `$response.body#${idPointer}` } });
  return { GetExecution: to('getExecution'), CancelExecution: to('cancelExecution'), ResumeExecution: to('resumeExecution') };
}

/** A path `id`; `known` (the served document's project) become its examples, which Schemathesis's examples phase starts. */
const idParameter = (description: string, known: readonly string[] = []) => ({
  name: 'id', in: 'path', required: true, description, schema: { type: 'string' },
  ...(known.length > 0 ? { examples: Object.fromEntries(known.map((id) => [id, { value: id }])) } : {}),
});

function startOperations(
  kind: string, operationSuffix: string, bounds: RequestBounds, body: JsonObject, target: string | undefined, known: readonly string[] = [],
): [JsonObject, JsonObject] {
  const parameters = target === undefined ? [idParameter(`The ${kind}'s id (GET /api/v1/definitions lists them).`, known)] : [];
  const requestBody = target === undefined
    ? { required: false, description: 'Optional: an empty body starts the run with `{}` as its input.', content: { 'application/json': { schema: body } } }
    : { required: true, content: { 'application/json': { schema: body } } };
  const errors = pick(400, 401, 404, 405, 413, 415, 422, 429, 503);
  const tag = `${kind}s`;
  const async = {
    operationId: `start${operationSuffix}`, tags: [tag],
    summary: `Start ${target === undefined ? `a ${kind}` : `${kind} "${target}"`}; it runs in the background.`,
    parameters, requestBody,
    responses: {
      202: execution('Started (pending): follow it at Location.', {
        headers: { Location: { ...header('/api/v1/executions/{id} of the new execution.'), required: true } },
        links: executionLinks('/id'),
      }),
      ...errors,
    },
  };
  const sync = {
    operationId: `start${operationSuffix}Sync`, tags: [tag],
    summary: `Run ${target === undefined ? `a ${kind}` : `${kind} "${target}"`} and wait for its end.`,
    parameters: [...parameters, ...queryParameters(syncQuery(bounds))], requestBody,
    responses: {
      200: execution('The run ended (its `status` may be `failed`), or paused.', { links: executionLinks('/id') }),
      408: {
        description: 'The wait ran out; the run goes on: `execution` is its state now.',
        content: problemContent(ref('ExecutionProblem')), links: executionLinks('/execution/id'),
      },
      ...errors,
    },
  };
  return [async, sync];
}

export function openApiDocument(options: DocumentOptions): JsonObject {
  const { bounds, definitions } = options;
  const schemas = componentSchemas(bounds);
  const paths: Record<string, JsonObject> = {
    '/healthz': {
      get: { operationId: 'getHealth', tags: ['probes'], summary: 'Liveness.', security: [], responses: { 200: { description: 'Alive.', content: { 'application/json': { schema: ref('Health') } } } } },
    },
    '/readyz': {
      get: {
        operationId: 'getReadiness', tags: ['probes'], summary: 'Readiness: the engine takes work and its store can be read.', security: [],
        responses: { 200: { description: 'Ready.', content: { 'application/json': { schema: ref('Health') } } }, ...pick(503) },
      },
    },
    '/api/v1/openapi.json': {
      get: {
        operationId: 'getOpenApiDocument', tags: ['reference'], summary: 'This document, with a start path per workflow of this engine\'s project.',
        responses: { 200: { description: 'The OpenAPI document.', content: { 'application/json': { schema: { type: 'object' } } } }, ...pick(401) },
      },
    },
    '/api/v1/definitions': {
      get: {
        operationId: 'getDefinitions', tags: ['reference'], summary: 'The loaded workflows (with their input schemas), tasks, agents and tools.',
        responses: { 200: { description: 'The definitions.', content: { 'application/json': { schema: ref('Definitions') } } }, ...pick(401, 503) },
      },
    },
  };
  for (const [path, kind] of TARGET_KINDS) {
    const name = kind[0]!.toUpperCase() + kind.slice(1);
    const known = definitions === undefined ? [] : [...definitions[path].keys()];
    const [async, sync] = startOperations(kind, name, bounds, ref('StartRequest'), undefined, known);
    paths[`/api/v1/${path}/{id}/executions`] = { post: async };
    paths[`/api/v1/${path}/{id}/executions/sync`] = { post: sync };
  }
  for (const workflow of definitions?.workflows.values() ?? []) {
    if (workflow.input_schema === undefined) continue;
    // `input` is required here: left out it would be `{}`, which a schema with required fields refuses (422).
    const generic = schemas['StartRequest'] as { properties: JsonObject };
    const input = { ...(workflow.input_schema as JsonObject), description: `The input of workflow "${workflow.id}".` };
    const body = { ...generic, properties: { ...generic.properties, input }, required: ['input'] };
    const suffix = `Workflow_${workflow.id}`;
    const [async, sync] = startOperations('workflow', suffix, bounds, body, workflow.id);
    paths[`/api/v1/workflows/${workflow.id}/executions`] = { post: async };
    paths[`/api/v1/workflows/${workflow.id}/executions/sync`] = { post: sync };
  }
  paths['/api/v1/executions'] = {
    get: {
      operationId: 'listExecutions', tags: ['executions'], summary: `The latest executions, newest first, at most ${MAX_LIST_LIMIT} a page.`,
      parameters: queryParameters(listQuery),
      responses: { 200: { description: 'A page.', content: { 'application/json': { schema: ref('ExecutionList') } } }, ...pick(400, 401, 503) },
    },
  };
  const executionId = idParameter('The execution\'s id.');
  paths['/api/v1/executions/{id}'] = {
    get: {
      operationId: 'getExecution', tags: ['executions'], summary: 'An execution: status, input, output, error, timings, trace id, diagnostics.',
      parameters: [executionId], responses: { 200: execution('The execution.'), ...pick(401, 404, 503) },
    },
  };
  paths['/api/v1/executions/{id}/cancel'] = {
    post: {
      operationId: 'cancelExecution', tags: ['executions'], summary: 'Cancel a pending, running or paused run, on whichever engine runs it.',
      parameters: [executionId], responses: { 200: execution('Canceled: the run records no further task.'), ...pick(401, 404, 409, 503) },
    },
  };
  paths['/api/v1/executions/{id}/resume'] = {
    post: {
      operationId: 'resumeExecution', tags: ['executions'], summary: 'Continue a paused workflow after its pause task.',
      parameters: [executionId], responses: { 202: execution('Resumed, on this engine.'), ...pick(401, 404, 409, 429, 503) },
    },
  };
  // Checks that come before routing: the key-less mode's Host and Origin (every operation, probes included: 403),
  // two Authorization headers (every API operation: 400), a POST that does not say it is JSON (415).
  for (const [path, operations] of Object.entries(paths)) {
    for (const [method, operation] of Object.entries(operations) as [string, { responses: JsonObject }][]) {
      const before: (keyof typeof responses)[] = [403, ...(path.startsWith('/api/') ? [400 as const] : []), ...(method === 'post' ? [415 as const] : [])];
      operation.responses = { ...operation.responses, ...pick(...before) };
    }
  }
  return {
    openapi: '3.1.1',
    info: {
      title: 'Switchyard API',
      version: '1',
      description: 'Start workflows, tasks and agents (in the background or waiting for the end), then read, list, cancel and resume their executions. '
        + 'Every error is application/problem+json (RFC 9457). Generated from the engine\'s zod schemas (src/api/schemas.ts): do not edit; run `npm run openapi`.',
    },
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key from SWITCHYARD_API_KEYS_FILE or SWITCHYARD_API_KEYS. Without any key configured (loopback only), none is needed.' } },
      schemas,
    },
  };
}
