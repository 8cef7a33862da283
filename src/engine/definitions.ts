import { readdirSync, readFileSync, existsSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { didYouMean } from './did-you-mean.ts';
import { compileJsonSchema, type InputCheck } from './json-schema.ts';
import { MIN_SANDBOX_MEMORY_MB, type ToolLimits } from './runtime/sandbox.ts';
import { envAllowlistProblem, type ToolDefinition } from './runtime/tool-runtime.ts';
import { placeholdersOf } from './templates.ts';
import { sameOrigin } from './agent/openai-compatible.ts';
import { plainHttpKeyProblem } from '../loopback.ts';

export type { InputCheck } from './json-schema.ts';

/**
 * Loads and validates a project directory: tools/, agents/, tasks/ and workflows/ of YAML files.
 * Every problem names the file, the path inside it and what to fix, and all of them are reported at
 * once (one DefinitionError). Checked beyond each file's shape, once everything is loaded:
 * - cross references: a task's tool or agent, an agent's tools;
 * - templates: every `{{ path }}` names something the run will have: `input` fields the workflow's
 *   input_schema declares, `tasks.<id>.output` of an EARLIER task of the same workflow (a tool's output
 *   fields cannot be known, so only the task id is), an agent's own tools in `tool_results`;
 * - tools: env allowlists free of loader and runtime variables (LD_PRELOAD, NODE_OPTIONS, ...), an
 *   input_schema that is a valid JSON Schema (the runtime enforces it on every call);
 * - agents: an `openai-compatible` model has a base URL (its own, or SWITCHYARD_MODEL_BASE_URL);
 * - the project has something to run: at least one workflow, task or agent.
 */

const Id = z.string().regex(/^[a-zA-Z0-9_.-]{1,64}$/, 'must be 1-64 characters of letters, digits, _ . -');
const JsonSchema = z.record(z.string(), z.unknown());
const withoutCredentials = (url: string) => !URL.canParse(url) || (new URL(url).username === '' && new URL(url).password === '');

const ToolFile = z.strictObject({
  id: Id,
  description: z.string().min(1),
  script: z.string().min(1),
  timeout_ms: z.number().int().positive().max(3_600_000).default(30_000),
  env: z.array(z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name')
    .refine((name) => envAllowlistProblem(name) === undefined, { error: (issue) => envAllowlistProblem(String(issue.input)) })).default([]),
  secret_inputs: z.array(z.string()).default([]),
  config: z.record(z.string(), z.unknown()).default({}),
  input_schema: JsonSchema.optional(),
  /** The tool's sandbox limits (engine/runtime/sandbox.ts); absent ones come from SWITCHYARD_TOOL_SANDBOX_MEMORY_MB / _MAX_PROCESSES. */
  sandbox: z.strictObject({
    memory_mb: z.number().int().min(MIN_SANDBOX_MEMORY_MB).max(1024 * 1024).optional(),
    processes: z.number().int().min(1).max(100_000).optional(),
    network: z.boolean().optional(),
  }).optional(),
});

/** A definition's `sandbox:` block as the runtime's limits (only what it sets). */
function definedLimits(sandbox: { memory_mb?: number; processes?: number; network?: boolean }): Partial<ToolLimits> {
  const limits: { memoryMb?: number; processes?: number; network?: boolean } = {};
  if (sandbox.memory_mb !== undefined) limits.memoryMb = sandbox.memory_mb;
  if (sandbox.processes !== undefined) limits.processes = sandbox.processes;
  if (sandbox.network !== undefined) limits.network = sandbox.network;
  return limits;
}

/** error.type values: snake_case, short (they are metric label values). */
const ErrorType = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be snake_case: a lowercase letter, then lowercase letters, digits or _ (at most 64)');

const ScriptedTurn = z.strictObject({
  when: z.strictObject({ path: z.string(), matches: z.string() }).optional(),
  tool_calls: z.array(z.strictObject({ tool: Id, arguments: z.unknown().default({}) })).optional(),
  final: z.unknown().optional(),
  /** The call fails as a provider's would, with this error.type (say model_http_503): for demos and tests of model failures. */
  error: z.strictObject({ type: ErrorType, message: z.string().min(1).optional() }).optional(),
  /** The turn answers every call from here on (its `when` still decides): a model that never stops asking for tools. */
  repeat: z.literal(true).optional(),
}).refine((turn) => [turn.tool_calls, turn.final, turn.error].filter((x) => x !== undefined).length === 1, 'a turn has exactly one of tool_calls, final or error');

const AgentFile = z.strictObject({
  id: Id,
  description: z.string().min(1),
  instructions: z.string().min(1),
  model: z.strictObject({
    provider: z.enum(['scripted', 'openai-compatible']).default('scripted'),
    name: z.string().min(1),
    // A URL is logged and put in error messages: it must not carry a credential.
    base_url: z.string().url().refine(withoutCredentials, 'must not carry a user or password: name the key with model.api_key_env or model.api_key_file').optional(),
    /** The agent's own key (openai-compatible), from this variable or this file (relative to the agent's file); else see modelEndpoint. */
    api_key_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name').optional(),
    api_key_file: z.string().min(1).optional(),
    temperature: z.number().min(0).max(2).optional(),
    /** openai-compatible: how long one call may take, retries included (default 30 s); then it fails with error.type timeout. */
    timeout_ms: z.number().int().positive().max(600_000).optional(),
    /** openai-compatible: how often a call answered 429 is retried after its Retry-After (default 2). */
    max_retries: z.number().int().min(0).max(5).optional(),
  }).refine((model) => model.api_key_env === undefined || model.api_key_file === undefined, 'set model.api_key_env or model.api_key_file, not both'),
  tools: z.array(Id).default([]),
  max_iterations: z.number().int().positive().max(50).default(5),
  timeout_ms: z.number().int().positive().default(60_000),
  script: z.array(ScriptedTurn).default([]),
});

const TaskStep = z.strictObject({
  id: Id,
  description: z.string().optional(),
  tool: Id.optional(),
  agent: Id.optional(),
  pause: z.literal(true).optional(),
  input: z.unknown().optional(),
  timeout_ms: z.number().int().positive().max(3_600_000).optional(),
}).refine((t) => [t.tool, t.agent, t.pause].filter((x) => x !== undefined).length === 1, 'a task has exactly one of tool, agent or pause');

const WorkflowFile = z.strictObject({
  id: Id,
  description: z.string().min(1),
  input_schema: JsonSchema.optional(),
  timeout_ms: z.number().int().positive().max(24 * 3_600_000).default(300_000),
  tasks: z.array(TaskStep).min(1),
  output: z.unknown().optional(),
});

export type AgentDefinition = z.infer<typeof AgentFile>;
export type ScriptedTurnDefinition = z.infer<typeof ScriptedTurn>;
export type TaskDefinition = z.infer<typeof TaskStep>;
export interface WorkflowDefinition extends z.infer<typeof WorkflowFile> {
  readonly validateInput: (input: unknown) => InputCheck;
}

export interface LoadOptions {
  /** SWITCHYARD_MODEL_BASE_URL: the base URL of `openai-compatible` agents that name none. */
  readonly modelBaseUrl?: string | undefined;
  /** Whether SWITCHYARD_MODEL_API_KEY(_FILE) is set: it goes to modelBaseUrl's origin (see modelEndpoint). */
  readonly modelApiKey?: boolean;
}

export interface Definitions {
  readonly tools: ReadonlyMap<string, ToolDefinition>;
  readonly agents: ReadonlyMap<string, AgentDefinition>;
  /** Standalone tasks, runnable on their own through /tasks/:id. */
  readonly tasks: ReadonlyMap<string, TaskDefinition>;
  readonly workflows: ReadonlyMap<string, WorkflowDefinition>;
}

/** Where a problem is inside a file: the keys and list indexes from the top (numbers as strings too). */
export type FieldPath = readonly (string | number)[];

/** One YAML file of the project, read: its value, or the problems that kept it from being one. */
export interface ProjectYaml {
  /** The path as problems name it (relative to the working directory). */
  readonly shown: string;
  readonly raw?: unknown;
  /** Syntax problems, one line each, with line numbers; the file has no value when there are any. */
  readonly problems: string[];
  /** A problem line for a field of this file: `file:line: field: message`, with list items counted from 1. */
  at(path: FieldPath | string, message: string): string;
}

/** Reads one YAML file of the project, keeping where each node is so that problems can name their line. */
export function readProjectYaml(file: string): ProjectYaml {
  const shown = relative(process.cwd(), file) || file;
  const lineCounter = new LineCounter();
  const doc = parseDocument(readFileSync(file, 'utf8'), { lineCounter, prettyErrors: false });
  const problems = doc.errors.map((error) => {
    const at = lineCounter.linePos(error.pos[0]);
    return `${shown}:${at.line}: not valid YAML (column ${at.col}): ${error.message.replace(/ at line \d+, column \d+:?[\s\S]*$/, '')}`;
  });
  const raw = problems.length === 0 ? doc.toJS() : undefined;
  return {
    shown, raw, problems,
    at(path, message) {
      const parts = typeof path === 'string' ? (path === '' ? [] : path.split('.')) : path;
      const line = lineOf(doc, lineCounter, parts);
      return `${shown}${line === undefined ? '' : `:${line}`}: ${describeField(parts, raw)}: ${message}`;
    },
  };
}

/** The line of the deepest node on `path` that exists (the key's line when the key is the last one found). */
function lineOf(doc: Document, lineCounter: LineCounter, path: FieldPath): number | undefined {
  let node: unknown = doc.contents;
  let start = (doc.contents as { range?: [number] } | null)?.range?.[0];
  for (const part of path) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === String(part));
      if (!pair) break;
      start = (pair.key as { range?: [number] }).range?.[0] ?? start;
      node = pair.value;
    } else if (isSeq(node)) {
      node = node.items[Number(part)];
      const range = (node as { range?: [number] } | undefined)?.range;
      if (!range) break;
      start = range[0];
    } else break;
  }
  return start === undefined ? undefined : lineCounter.linePos(start).line;
}

/**
 * A field path as a person counts: `tasks.3.tool` is `task 4 "notify", tool` (the task's id when it has
 * one), other list items `env item 2`; the top of the file is `(top level)`.
 */
export function describeField(path: FieldPath, raw: unknown): string {
  const groups: string[] = [];
  let keys: string[] = [];
  let value = raw;
  path.forEach((part, i) => {
    const index = typeof part === 'number' ? part : /^\d+$/.test(part) && Array.isArray(value) ? Number(part) : undefined;
    value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[String(part)] : undefined;
    if (index === undefined || i === 0) {
      keys.push(String(part));
      return;
    }
    const list = keys.pop()!;
    if (keys.length > 0) groups.push(keys.join('.'));
    keys = [];
    const id = (value as { id?: unknown } | undefined)?.id;
    groups.push(list === 'tasks' ? `task ${index + 1}${typeof id === 'string' ? ` "${id}"` : ''}` : `${list} item ${index + 1}`);
  });
  if (keys.length > 0) groups.push(keys.join('.'));
  return groups.length === 0 ? '(top level)' : groups.join(', ');
}

/** The field names a zod object schema accepts at `path` (through lists, defaults and optionals). */
function fieldsAt(schema: z.ZodType, path: FieldPath): string[] {
  let current: unknown = schema;
  const unwrap = () => {
    for (;;) {
      const def = (current as { _zod?: { def?: { type: string; innerType?: unknown } } })._zod?.def;
      if (def && ['optional', 'default', 'nullable', 'prefault', 'readonly'].includes(def.type)) current = def.innerType;
      else return def as { type: string; shape?: Record<string, unknown>; element?: unknown; valueType?: unknown } | undefined;
    }
  };
  for (const part of path) {
    const def = unwrap();
    if (def?.type === 'object' && typeof part === 'string') current = def.shape?.[part];
    else if (def?.type === 'array') current = def.element;
    else if (def?.type === 'record') current = def.valueType;
    else return [];
  }
  const def = unwrap();
  return def?.type === 'object' ? Object.keys(def.shape ?? {}) : [];
}

/** One problem line per schema issue; an unknown field gets the closest known one and the list of known ones. */
export function schemaIssueProblems(file: ProjectYaml, schema: z.ZodType, issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.flatMap((issue) => {
    const path = issue.path as (string | number)[];
    if (issue.code !== 'unrecognized_keys') return [file.at(path, issue.message)];
    const known = fieldsAt(schema, path);
    const fields = known.length === 0 ? '' : ` (the fields here: ${known.join(', ')})`;
    return issue.keys.map((key) => file.at([...path, key], `unknown field "${key}"${didYouMean(key, known)}${fields}`));
  });
}

export class DefinitionError extends Error {
  override name = 'DefinitionError';
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid project definitions (${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}):\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

export function loadDefinitions(projectDir: string, options: LoadOptions = {}): Definitions {
  const problems: string[] = [];
  const root = resolve(projectDir);
  if (!existsSync(root)) throw new DefinitionError([`${projectDir}: project directory does not exist (set SWITCHYARD_PROJECT_DIR)`]);
  if (!statSync(root).isDirectory()) throw new DefinitionError([`${projectDir}: not a directory (SWITCHYARD_PROJECT_DIR names a project directory)`]);

  /** Ids of files that were found but refused: references to them are not reported a second time. */
  const refused = new Set<string>();
  /** The files read, by their shown path: problems found later name their lines through them. */
  const files = new Map<string, ProjectYaml>();
  /** A problem line for `field` of `file` (the shown path), with its line number. */
  const report = (file: string, field: FieldPath | string, message: string) => {
    problems.push(files.get(file)?.at(field, message) ?? `${file}: ${typeof field === 'string' ? field : field.join('.')}: ${message}`);
  };
  const load = <S extends z.ZodType>(folder: string, schema: S) => {
    const out = new Map<string, { value: z.infer<S>; file: string }>();
    const dir = join(root, folder);
    if (!existsSync(dir)) return out;
    for (const name of readdirSync(dir).filter((n) => /\.ya?ml$/.test(n)).sort()) {
      const yamlFile = readProjectYaml(join(dir, name));
      const { shown, raw } = yamlFile;
      if (yamlFile.problems.length > 0) {
        problems.push(...yamlFile.problems);
        continue;
      }
      files.set(shown, yamlFile);
      const parsed = schema.safeParse(raw);
      if (!parsed.success) {
        problems.push(...schemaIssueProblems(yamlFile, schema, parsed.error.issues));
        const id = (raw as { id?: unknown } | null)?.id;
        if (typeof id === 'string') refused.add(`${folder}/${id}`);
        continue;
      }
      const value = parsed.data as z.infer<S> & { id: string };
      if (out.has(value.id)) problems.push(yamlFile.at('id', `"${value.id}" is already defined in ${out.get(value.id)!.file}`));
      out.set(value.id, { value, file: shown });
    }
    return out;
  };

  const toolFiles = load('tools', ToolFile);
  const agentFiles = load('agents', AgentFile);
  const taskFiles = load('tasks', TaskStep);
  const workflowFiles = load('workflows', WorkflowFile);

  if (agentFiles.size + taskFiles.size + workflowFiles.size === 0 && refused.size === 0 && problems.length === 0) {
    problems.push(`${projectDir}: no workflows, tasks or agents: a project holds YAML files under workflows/, tasks/ or agents/ `
      + '(and the tools they use under tools/); is SWITCHYARD_PROJECT_DIR the right directory?');
  }

  const tools = new Map<string, ToolDefinition>();
  for (const [id, { value, file }] of toolFiles) {
    const script = resolve(dirname(resolve(file)), value.script);
    if (!existsSync(script)) report(file, 'script', `file "${value.script}" does not exist`);
    if (value.input_schema !== undefined) schemaProblems(file, 'input_schema', value.input_schema);
    tools.set(id, {
      id, description: value.description, script, timeoutMs: value.timeout_ms, env: value.env,
      secretInputs: value.secret_inputs, config: value.config, inputSchema: value.input_schema,
      ...(value.sandbox ? { sandbox: definedLimits(value.sandbox) } : {}),
    });
  }

  const checkRef = (file: string, path: string, kind: 'tool' | 'agent', id: string | undefined) => {
    if (id === undefined) return;
    const known = kind === 'tool' ? toolFiles : agentFiles;
    if (!known.has(id) && !refused.has(`${kind}s/${id}`)) report(file, path, `unknown ${kind} "${id}"${didYouMean(id, known.keys())} (the ${kind}s: ${list([...known.keys()])})`);
  };

  for (const [, { value, file }] of agentFiles) {
    value.tools.forEach((tool, i) => checkRef(file, `tools.${i}`, 'tool', tool));
    if (value.model.provider === 'openai-compatible' && !value.model.base_url && !options.modelBaseUrl) {
      report(file, 'model.base_url', 'an openai-compatible model needs a base URL: set model.base_url in this file '
        + 'or SWITCHYARD_MODEL_BASE_URL for every such agent (for example http://localhost:11434/v1 for Ollama)');
    }
    if (value.model.api_key_file !== undefined) {
      value.model.api_key_file = resolve(dirname(resolve(file)), value.model.api_key_file);
      if (!existsSync(value.model.api_key_file)) problems.push(`${file}: model.api_key_file: file "${value.model.api_key_file}" does not exist`);
    }
    const baseUrl = value.model.base_url ?? options.modelBaseUrl;
    const sendsKey = value.model.api_key_env !== undefined || value.model.api_key_file !== undefined
      || (options.modelApiKey === true && (value.model.base_url === undefined || sameOrigin(value.model.base_url, options.modelBaseUrl)));
    const overPlainHttp = value.model.provider === 'openai-compatible' && sendsKey && baseUrl ? plainHttpKeyProblem(baseUrl) : undefined;
    if (overPlainHttp) problems.push(`${file}: model.base_url: ${overPlainHttp}`);
    const agentScope: TemplateScope = { roots: ['input'] };
    checkTemplates(file, 'instructions', value.instructions, agentScope);
    const turnScope: TemplateScope = { roots: ['input', 'tool_results', 'iteration'], toolResults: value.tools };
    value.script.forEach((turn, i) => {
      if (turn.when) checkPath(file, `script.${i}.when.path`, turn.when.path, turn.when.path.split('.'), turnScope);
      turn.tool_calls?.forEach((call, j) => checkTemplates(file, `script.${i}.tool_calls.${j}.arguments`, call.arguments, turnScope));
      checkTemplates(file, `script.${i}.final`, turn.final, turnScope);
    });
  }
  for (const [, { value, file }] of taskFiles) {
    checkRef(file, 'tool', 'tool', value.tool);
    checkRef(file, 'agent', 'agent', value.agent);
    checkTemplates(file, 'input', value.input, { roots: ['input'] });
  }

  const workflows = new Map<string, WorkflowDefinition>();
  for (const [id, { value, file }] of workflowFiles) {
    const seen = new Set<string>();
    value.tasks.forEach((task, i) => {
      if (seen.has(task.id)) report(file, ['tasks', i, 'id'], `duplicate task id "${task.id}"`);
      seen.add(task.id);
      checkRef(file, `tasks.${i}.tool`, 'tool', task.tool);
      checkRef(file, `tasks.${i}.agent`, 'agent', task.agent);
      checkTemplates(file, `tasks.${i}.input`, task.input, { roots: ['input', 'tasks'], inputSchema: value.input_schema, workflow: value.tasks, before: i });
    });
    checkTemplates(file, 'output', value.output, { roots: ['input', 'tasks'], inputSchema: value.input_schema, workflow: value.tasks, before: value.tasks.length });
    let validateInput: WorkflowDefinition['validateInput'] = (input) => ({ ok: true, value: input });
    if (value.input_schema) validateInput = schemaProblems(file, 'input_schema', value.input_schema) ?? validateInput;
    workflows.set(id, { ...value, validateInput });
  }

  /** Reports what is wrong with a JSON Schema field; its validator when nothing is. */
  function schemaProblems(file: string, field: string, schema: unknown): ((input: unknown) => InputCheck) | undefined {
    const compiled = compileJsonSchema(schema);
    if (compiled.ok) return compiled.validate;
    for (const problem of compiled.problems) {
      const [where, ...message] = (problem.startsWith('(schema)') ? field + problem.slice('(schema)'.length) : `${field}.${problem}`).split(': ');
      report(file, where!, message.join(': '));
    }
    return undefined;
  }

  function checkTemplates(file: string, field: string, template: unknown, scope: TemplateScope): void {
    for (const placeholder of placeholdersOf(template, field)) {
      if (placeholder.path === undefined) {
        report(file, placeholder.field, `"${placeholder.text}" is not a placeholder: write {{ path.to.value }} (letters, digits, _ . -)`);
      } else {
        checkPath(file, placeholder.field, placeholder.text, placeholder.path, scope);
      }
    }
  }

  function checkPath(file: string, field: string, text: string, path: readonly string[], scope: TemplateScope): void {
    const problem = templatePathProblem(path, scope);
    if (problem) report(file, field, `${text}: ${problem}`);
  }

  if (problems.length > 0) throw new DefinitionError(problems);
  return {
    tools,
    agents: new Map([...agentFiles].map(([id, { value }]) => [id, value])),
    tasks: new Map([...taskFiles].map(([id, { value }]) => [id, value])),
    workflows,
  };
}

/** What a template may refer to where it sits; mirrors the context the engine renders it with. */
interface TemplateScope {
  /** `input` always; `tasks` in a workflow; `tool_results`, `iteration` in a scripted agent's turns. */
  readonly roots: readonly string[];
  /** The workflow's input JSON Schema: `input.<field>` must be a property it declares. */
  readonly inputSchema?: unknown;
  /** The workflow's tasks, and how many of them run before this template is rendered. */
  readonly workflow?: readonly TaskDefinition[];
  readonly before?: number;
  /** The agent's tools: the keys of `tool_results`. */
  readonly toolResults?: readonly string[];
}

const list = (names: readonly string[]) => (names.length ? names.join(', ') : 'none');

function templatePathProblem(path: readonly string[], scope: TemplateScope): string | undefined {
  if (path.some((part) => part === '')) return 'a path has no empty parts: write {{ input.field }}, not {{ input..field }}';
  const [root, ...rest] = path as [string, ...string[]];
  if (!scope.roots.includes(root)) return `"${root}" is not known here${didYouMean(root, scope.roots)} (a template here can name ${list(scope.roots)})`;
  if (root === 'input') return inputFieldProblem(scope.inputSchema, rest);
  if (root === 'tool_results') {
    const tool = rest[0];
    if (tool !== undefined && !scope.toolResults?.includes(tool)) return `"${tool}" is not one of this agent's tools${didYouMean(tool, scope.toolResults ?? [])} (${list(scope.toolResults ?? [])})`;
    return undefined;
  }
  if (root === 'tasks' && scope.workflow) {
    const [taskId, part] = rest;
    if (taskId === undefined) return undefined;
    const earlier = scope.workflow.slice(0, scope.before).filter((task) => !task.pause).map((task) => task.id);
    const index = scope.workflow.findIndex((task) => task.id === taskId);
    if (index === -1) return `no task "${taskId}" in this workflow${didYouMean(taskId, scope.workflow.map((task) => task.id))} (tasks that run before this one: ${list(earlier)})`;
    if (scope.workflow[index]!.pause) return `task "${taskId}" is a pause and has no output; tasks that run before this one: ${list(earlier)}`;
    if (index >= scope.before!) return `task "${taskId}" has not run yet at this point (only earlier tasks' outputs exist: ${list(earlier)})`;
    if (part !== undefined && part !== 'output') return `a task holds only its output: write {{ tasks.${taskId}.output... }}`;
  }
  return undefined;
}

/**
 * An `input.a.b` path against the workflow's input schema: each part must be a property that the
 * schema at that level declares. Where the schema does not say (no schema, no `properties`, or
 * properties it allows beyond those listed: additionalProperties true or a schema, patternProperties,
 * composition or $ref), nothing more is checked.
 */
function inputFieldProblem(schema: unknown, path: readonly string[]): string | undefined {
  let current = schema;
  let walked = 'input';
  for (const part of path) {
    if (!current || typeof current !== 'object') return undefined;
    const level = current as Record<string, unknown>;
    const properties = level['properties'];
    if (!properties || typeof properties !== 'object') return undefined;
    if (level['additionalProperties'] === true || (level['additionalProperties'] && typeof level['additionalProperties'] === 'object')) return undefined;
    if (['patternProperties', 'allOf', 'anyOf', 'oneOf', '$ref'].some((key) => key in level)) return undefined;
    if (!Object.hasOwn(properties, part)) {
      return `the input_schema declares no property "${part}"${walked === 'input' ? '' : ` under ${walked}`}${didYouMean(part, Object.keys(properties))} (it declares: ${list(Object.keys(properties))})`;
    }
    current = (properties as Record<string, unknown>)[part];
    walked += `.${part}`;
  }
  return undefined;
}
