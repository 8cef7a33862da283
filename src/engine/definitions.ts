import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import type { ToolDefinition } from './runtime/tool-runtime.ts';

/**
 * Loads and validates a project directory: tools/, agents/, tasks/ and workflows/ of YAML files.
 * Every error names the file, the path inside it and what is wrong; cross references (a workflow's
 * tool, an agent's tools) are checked once everything is loaded.
 */

const Id = z.string().regex(/^[a-zA-Z0-9_.-]{1,64}$/, 'must be 1-64 characters of letters, digits, _ . -');
const JsonSchema = z.record(z.string(), z.unknown());

const ToolFile = z.strictObject({
  id: Id,
  description: z.string().min(1),
  script: z.string().min(1),
  timeout_ms: z.number().int().positive().max(3_600_000).default(30_000),
  env: z.array(z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name')).default([]),
  secret_inputs: z.array(z.string()).default([]),
  config: z.record(z.string(), z.unknown()).default({}),
  input_schema: JsonSchema.optional(),
});

const ScriptedTurn = z.strictObject({
  when: z.strictObject({ path: z.string(), matches: z.string() }).optional(),
  tool_calls: z.array(z.strictObject({ tool: Id, arguments: z.unknown().default({}) })).optional(),
  final: z.unknown().optional(),
}).refine((turn) => (turn.tool_calls === undefined) !== (turn.final === undefined), 'a turn has exactly one of tool_calls or final');

const AgentFile = z.strictObject({
  id: Id,
  description: z.string().min(1),
  instructions: z.string().min(1),
  model: z.strictObject({
    provider: z.enum(['scripted', 'openai-compatible']).default('scripted'),
    name: z.string().min(1),
    base_url: z.string().url().optional(),
    api_key_env: z.string().optional(),
    temperature: z.number().min(0).max(2).optional(),
  }),
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
export type InputCheck = { ok: true; value: unknown } | { ok: false; problems: string[] };

export interface Definitions {
  readonly tools: ReadonlyMap<string, ToolDefinition>;
  readonly agents: ReadonlyMap<string, AgentDefinition>;
  /** Standalone tasks, runnable on their own through /tasks/:id. */
  readonly tasks: ReadonlyMap<string, TaskDefinition>;
  readonly workflows: ReadonlyMap<string, WorkflowDefinition>;
}

export class DefinitionError extends Error {
  override name = 'DefinitionError';
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid project definitions:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

export function loadDefinitions(projectDir: string): Definitions {
  const problems: string[] = [];
  const root = resolve(projectDir);
  if (!existsSync(root)) throw new DefinitionError([`${projectDir}: project directory does not exist`]);

  const load = <S extends z.ZodType>(folder: string, schema: S) => {
    const out = new Map<string, { value: z.infer<S>; file: string }>();
    const dir = join(root, folder);
    if (!existsSync(dir)) return out;
    for (const name of readdirSync(dir).filter((n) => /\.ya?ml$/.test(n)).sort()) {
      const file = join(dir, name);
      const shown = relative(process.cwd(), file) || file;
      let raw: unknown;
      try {
        raw = parseYaml(readFileSync(file, 'utf8'));
      } catch (error) {
        const where = error instanceof YAMLParseError && error.linePos ? ` (line ${error.linePos[0].line})` : '';
        problems.push(`${shown}${where}: not valid YAML: ${(error as Error).message.split('\n')[0]}`);
        continue;
      }
      const parsed = schema.safeParse(raw);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) problems.push(`${shown}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
        continue;
      }
      const value = parsed.data as z.infer<S> & { id: string };
      if (out.has(value.id)) problems.push(`${shown}: id: "${value.id}" is already defined in ${out.get(value.id)!.file}`);
      out.set(value.id, { value, file: shown });
    }
    return out;
  };

  const toolFiles = load('tools', ToolFile);
  const agentFiles = load('agents', AgentFile);
  const taskFiles = load('tasks', TaskStep);
  const workflowFiles = load('workflows', WorkflowFile);

  const tools = new Map<string, ToolDefinition>();
  for (const [id, { value, file }] of toolFiles) {
    const script = resolve(dirname(resolve(file)), value.script);
    if (!existsSync(script)) problems.push(`${file}: script: file "${value.script}" does not exist`);
    tools.set(id, {
      id, description: value.description, script, timeoutMs: value.timeout_ms, env: value.env,
      secretInputs: value.secret_inputs, config: value.config, inputSchema: value.input_schema,
    });
  }

  const checkRef = (file: string, path: string, kind: 'tool' | 'agent', id: string | undefined) => {
    if (id === undefined) return;
    const known = kind === 'tool' ? toolFiles : agentFiles;
    if (!known.has(id)) problems.push(`${file}: ${path}: unknown ${kind} "${id}"`);
  };

  for (const [, { value, file }] of agentFiles) value.tools.forEach((tool, i) => checkRef(file, `tools.${i}`, 'tool', tool));
  for (const [, { value, file }] of taskFiles) {
    checkRef(file, 'tool', 'tool', value.tool);
    checkRef(file, 'agent', 'agent', value.agent);
  }

  const workflows = new Map<string, WorkflowDefinition>();
  for (const [id, { value, file }] of workflowFiles) {
    const seen = new Set<string>();
    value.tasks.forEach((task, i) => {
      if (seen.has(task.id)) problems.push(`${file}: tasks.${i}.id: duplicate task id "${task.id}"`);
      seen.add(task.id);
      checkRef(file, `tasks.${i}.tool`, 'tool', task.tool);
      checkRef(file, `tasks.${i}.agent`, 'agent', task.agent);
    });
    let validateInput: WorkflowDefinition['validateInput'] = (input) => ({ ok: true, value: input });
    if (value.input_schema) {
      try {
        const schema = z.fromJSONSchema(value.input_schema as Parameters<typeof z.fromJSONSchema>[0]);
        validateInput = (input) => {
          const result = schema.safeParse(input);
          return result.success
            ? { ok: true, value: result.data }
            : { ok: false, problems: result.error.issues.map((issue) => `${issue.path.join('.') || 'input'}: ${issue.message}`) };
        };
      } catch (error) {
        problems.push(`${file}: input_schema: not a usable JSON Schema: ${(error as Error).message}`);
      }
    }
    workflows.set(id, { ...value, validateInput });
  }

  if (problems.length > 0) throw new DefinitionError(problems);
  return {
    tools,
    agents: new Map([...agentFiles].map(([id, { value }]) => [id, value])),
    tasks: new Map([...taskFiles].map(([id, { value }]) => [id, value])),
    workflows,
  };
}
