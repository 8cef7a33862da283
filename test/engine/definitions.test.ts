import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterEach, describe, expect, it } from 'vitest';
import { closestName, editDistance } from '../../src/engine/did-you-mean.ts';
import { DefinitionError, loadDefinitions, type LoadOptions } from '../../src/engine/definitions.ts';
import { jsonSchemaProblems } from '../../src/engine/json-schema.ts';
import { placeholdersOf, render } from '../../src/engine/templates.ts';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function project(files: Record<string, string>): string {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-defs-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

function problemsOf(root: string, options?: LoadOptions): string[] {
  try {
    loadDefinitions(root, options);
  } catch (error) {
    if (error instanceof DefinitionError) return error.problems;
    throw error;
  }
  throw new Error('expected the project to be rejected');
}

describe('loading definitions', () => {
  it('loads the sample project', () => {
    const d = loadDefinitions('examples');
    expect([...d.workflows.keys()].sort()).toEqual(['quick_answer', 'refund_approval', 'support_triage']);
    expect(d.tools.get('lookup_customer')!.script).toMatch(/examples\/tools\/lookup_customer\.ts$/);
  });

  it('rejects invalid files naming the file, the field and the problem', () => {
    const root = project({
      'tools/t.yaml': 'id: t\ndescription: d\nscript: missing.ts\n',
      'tools/u.yaml': 'id: u\ndescription: d\nscript: missing.ts\nenv: [lower_case]\n',
      'agents/a.yaml': 'id: a\ndescription: d\ninstructions: i\nmodel: { provider: magic, name: m }\n',
      'workflows/w.yaml': 'id: w\ndescription: d\ntasks:\n  - id: one\n    tool: nope\n  - id: one\n    agent: ghost\n',
      'workflows/v.yaml': 'id: v\ndescription: d\ntasks:\n  - id: one\n    agent: ghost\n    tool: t\n',
      'workflows/broken.yaml': 'id: [unclosed\n',
      'workflows/bad id.yaml': 'id: "has space"\ndescription: d\ntasks: [{ id: x, pause: true }]\n',
    });
    const problems = problemsOf(root);
    const has = (pattern: RegExp) => expect(problems.some((p) => pattern.test(p)), `${pattern} in\n${problems.join('\n')}`).toBe(true);
    has(/tools\/u\.yaml:4: env item 1: must be an environment variable name/);
    has(/tools\/t\.yaml:3: script: file "missing\.ts" does not exist/);
    has(/agents\/a\.yaml:4: model\.provider: /);
    has(/workflows\/w\.yaml:5: task 1 "one", tool: unknown tool "nope" \(the tools: t\)$/);
    has(/workflows\/w\.yaml:6: task 2 "one", id: duplicate task id "one"/);
    has(/workflows\/w\.yaml:7: task 2 "one", agent: unknown agent "ghost"/);
    has(/workflows\/v\.yaml:4: task 1 "one": a task has exactly one of tool, agent or pause/);
    has(/workflows\/broken\.yaml:\d+: not valid YAML \(column \d+\): [^\n]*[^:\n]$/);
    has(/workflows\/bad id\.yaml:1: id: must be 1-64 characters/);
  });

  it('says which field, tool, agent or task was meant, one line per problem, with its line and a task number from 1', () => {
    const root = project({
      'tools/lookup_customer.yaml': 'id: lookup_customer\ndescription: d\nscript: lookup.ts\ntimeout: 5000\n', 'tools/lookup.ts': '',
      'agents/triage_classifier.yaml': 'id: triage_classifier\ndescription: d\ninstructions: i\nmodel: { provider: scripted, name: s }\n',
      'workflows/w.yaml': 'id: w\ndescription: d\ntasks:\n  - id: first\n    tool: lookup_custmer\n  - id: second\n    agent: triage_clasifier\n    timeout: 5\n',
    });
    const problems = problemsOf(root);
    expect(problems).toEqual([
      expect.stringMatching(/tools\/lookup_customer\.yaml:4: timeout: unknown field "timeout"; did you mean "timeout_ms"\? \(the fields here: id, description, script, timeout_ms, /),
      expect.stringMatching(/workflows\/w\.yaml:8: task 2 "second", timeout: unknown field "timeout"; did you mean "timeout_ms"\?/),
    ]);
    for (const problem of problems) expect(problem).not.toMatch(/\n/);
    writeFileSync(join(root, 'tools', 'lookup_customer.yaml'), 'id: lookup_customer\ndescription: d\nscript: lookup.ts\n');
    writeFileSync(join(root, 'workflows', 'w.yaml'), 'id: w\ndescription: d\ntasks:\n  - id: first\n    tool: lookup_custmer\n  - id: second\n    agent: triage_clasifier\n');
    expect(problemsOf(root)).toEqual([
      expect.stringMatching(/workflows\/w\.yaml:5: task 1 "first", tool: unknown tool "lookup_custmer"; did you mean "lookup_customer"\? \(the tools: lookup_customer\)$/),
      expect.stringMatching(/workflows\/w\.yaml:7: task 2 "second", agent: unknown agent "triage_clasifier"; did you mean "triage_classifier"\?/),
    ]);
    // Nothing close: no guess.
    expect(closestName('zzz', ['lookup_customer', 'echo'])).toBeUndefined();
    expect(closestName('ehco', ['lookup_customer', 'echo'])).toBe('echo');
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('a YAML syntax error is one line with the line and column, without the parser\'s dangling excerpt', () => {
    const root = project({ 'workflows/w.yaml': 'id: w\ndescription: d\ntasks:\n   - id: x\n  pause: true\n' });
    const problems = problemsOf(root);
    expect(problems.length).toBeGreaterThan(0);
    for (const problem of problems) expect(problem).toMatch(/^.*workflows\/w\.yaml:\d+: not valid YAML \(column \d+\): [^\n]*[^:\s]$/);
  });

  it('rejects a duplicate id across files', () => {
    const root = project({
      'workflows/a.yaml': 'id: same\ndescription: d\ntasks: [{ id: x, pause: true }]\n',
      'workflows/b.yaml': 'id: same\ndescription: d\ntasks: [{ id: x, pause: true }]\n',
    });
    expect(problemsOf(root)).toEqual([expect.stringMatching(/b\.yaml:1: id: "same" is already defined in .*a\.yaml/)]);
  });
});

describe('templates', () => {
  it('keep types for whole placeholders, stringify inside text, drop undefined keys', () => {
    const context = { input: { n: 3, obj: { a: 1 }, s: 'x' } };
    expect(render({ n: '{{ input.n }}', o: '{{input.obj}}', t: 'n={{ input.n }} s={{ input.s }}', gone: '{{ input.missing }}' }, context))
      .toEqual({ n: 3, o: { a: 1 }, t: 'n=3 s=x' });
    expect(render('{{ input.__proto__ }}', context)).toBeUndefined();
  });
});

/** A tool the other files can use (its script exists), an agent, and a workflow made of both. */
const TOOL = 'id: lookup\ndescription: d\nscript: lookup.ts\n';
const AGENT = 'id: classifier\ndescription: d\ninstructions: "Classify {{ input.subject }}"\nmodel: { provider: scripted, name: s }\n'
  + 'tools: [lookup]\nscript:\n  - tool_calls: [{ tool: lookup, arguments: { q: "{{ input.subject }}" } }]\n'
  + '  - final: { category: billing, seen: "{{ tool_results.lookup.hits }}" }\n';
const workflow = (tasks: string, output = '') => 'id: triage\ndescription: d\n'
  + 'input_schema: { type: object, properties: { subject: { type: string }, customer: { type: object, properties: { email: { type: string } } } } }\n'
  + `tasks:\n${tasks}${output}`;
const GOOD_TASKS = '  - id: classify\n    agent: classifier\n    input: { subject: "{{ input.subject }}" }\n'
  + '  - id: approve\n    pause: true\n'
  + '  - id: notify\n    tool: lookup\n    input: { category: "{{ tasks.classify.output.category }}", to: "{{ input.customer.email }}", all: "{{ tasks.classify }}" }\n';
const GOOD_OUTPUT = 'output: { category: "{{ tasks.classify.output.category }}", sent: "{{ tasks.notify.output }}" }\n';

function has(problems: string[], pattern: RegExp): void {
  expect(problems.some((p) => pattern.test(p)), `${pattern} in\n${problems.join('\n')}`).toBe(true);
}

describe('definitions checked at start', () => {
  it('a good project with templates over input fields and earlier tasks loads', () => {
    const root = project({
      'tools/lookup.yaml': TOOL, 'tools/lookup.ts': '', 'agents/classifier.yaml': AGENT,
      'workflows/triage.yaml': workflow(GOOD_TASKS, GOOD_OUTPUT),
      'tasks/search.yaml': 'id: search\ndescription: d\ntool: lookup\ninput: { q: "{{ input.q }}" }\n',
    });
    const d = loadDefinitions(root);
    expect([...d.workflows.keys()]).toEqual(['triage']);
    expect([...d.tasks.keys()]).toEqual(['search']);
  });

  it('template references: a misspelt task, a later task, a pause, an undeclared input field, an unknown root; all at once', () => {
    const root = project({
      'tools/lookup.yaml': TOOL, 'tools/lookup.ts': '', 'agents/classifier.yaml': AGENT.replace('tool_results.lookup.hits', 'tool_results.lokup.hits'),
      'workflows/triage.yaml': workflow(
        '  - id: classify\n    agent: classifier\n    input: { subject: "{{ input.subjct }}", to: "{{ input.customer.mail }}", later: "{{ tasks.notify.output }}" }\n'
        + '  - id: approve\n    pause: true\n'
        + '  - id: notify\n    tool: lookup\n    input: { category: "{{ tasks.clasify.output.category }}", ok: "{{ approve.output }}", p: "{{ tasks.approve.output }}", r: "{{ tasks.classify.result }}", bad: "{{ input.subject }" }\n',
        'output: "{{ tasks.notfy.output }}"\n'),
      'tasks/search.yaml': 'id: search\ndescription: d\ntool: lookup\ninput: { q: "{{ tasks.classify.output }}" }\n',
    });
    const problems = problemsOf(root);
    const file = 'workflows/triage\\.yaml';
    has(problems, new RegExp(`${file}:12: task 3 "notify", input\\.category: \\{\\{ tasks\\.clasify\\.output\\.category \\}\\}: no task "clasify" in this workflow; did you mean "classify"\\? \\(tasks that run before this one: classify\\)$`));
    has(problems, new RegExp(`${file}:7: task 1 "classify", input\\.subject: \\{\\{ input\\.subjct \\}\\}: the input_schema declares no property "subjct"; did you mean "subject"\\? \\(it declares: subject, customer\\)`));
    has(problems, new RegExp(`${file}:7: task 1 "classify", input\\.to: .*no property "mail" under input\\.customer; did you mean "email"\\? \\(it declares: email\\)`));
    has(problems, new RegExp(`${file}:7: task 1 "classify", input\\.later: .*task "notify" has not run yet at this point \\(only earlier tasks' outputs exist: none\\)`));
    has(problems, new RegExp(`${file}:12: task 3 "notify", input\\.ok: .*"approve" is not known here \\(a template here can name input, tasks\\)`));
    has(problems, new RegExp(`${file}:12: task 3 "notify", input\\.p: .*task "approve" is a pause and has no output`));
    has(problems, new RegExp(`${file}:12: task 3 "notify", input\\.r: .*a task holds only its output: write \\{\\{ tasks\\.classify\\.output\\.\\.\\. \\}\\}`));
    has(problems, new RegExp(`${file}:12: task 3 "notify", input\\.bad: "\\{\\{ input\\.subject \\}" is not a placeholder`));
    has(problems, new RegExp(`${file}:13: output: \\{\\{ tasks\\.notfy\\.output \\}\\}: no task "notfy" in this workflow; did you mean "notify"\\? \\(tasks that run before this one: classify, notify\\)`));
    has(problems, /tasks\/search\.yaml:4: input\.q: \{\{ tasks\.classify\.output \}\}: "tasks" is not known here \(a template here can name input\)$/);
    has(problems, /agents\/classifier\.yaml:8: script item 2, final\.seen: .*"lokup" is not one of this agent's tools; did you mean "lookup"\? \(lookup\)/);
    expect(problems).toHaveLength(11);
  });

  it('env allowlists refuse loader and runtime variables, naming the file and the entry', () => {
    const names = ['LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT', 'DYLD_INSERT_LIBRARIES', 'NODE_OPTIONS', 'BUN_OPTIONS', 'GLIBC_TUNABLES'];
    const root = project({
      'tools/lookup.yaml': `${TOOL}env: [NOTIFY_SENDER, ${names.join(', ')}]\n`, 'tools/lookup.ts': '',
      'tasks/search.yaml': 'id: search\ndescription: d\ntool: lookup\n',
    });
    const problems = problemsOf(root);
    names.forEach((name, i) => has(problems, new RegExp(`tools/lookup\\.yaml:\\d+: env item ${i + 2}: ${name} can inject code into the tool process`)));
    expect(problems).toHaveLength(names.length);
    rmSync(root, { recursive: true });
    expect(loadDefinitions(project({ 'tools/lookup.yaml': `${TOOL}env: [NOTIFY_SENDER]\n`, 'tools/lookup.ts': '', 'tasks/search.yaml': 'id: search\ndescription: d\ntool: lookup\n' })).tools.get('lookup')!.env)
      .toEqual(['NOTIFY_SENDER']);
  });

  it('a tool\'s sandbox block: its limits reach the runtime; bad values and unknown keys are refused', () => {
    const task = 'id: search\ndescription: d\ntool: lookup\n';
    const good = project({ 'tools/lookup.yaml': `${TOOL}sandbox:\n  memory_mb: 768\n  network: false\n`, 'tools/lookup.ts': '', 'tasks/search.yaml': task });
    expect(loadDefinitions(good).tools.get('lookup')!.sandbox).toEqual({ memoryMb: 768, network: false });
    rmSync(good, { recursive: true });
    const bad = project({ 'tools/lookup.yaml': `${TOOL}sandbox:\n  memory_mb: 64\n  processes: 0\n  read: [/etc]\n`, 'tools/lookup.ts': '', 'tasks/search.yaml': task });
    const problems = problemsOf(bad);
    has(problems, /tools\/lookup\.yaml:5: sandbox\.memory_mb: .*512/);
    has(problems, /tools\/lookup\.yaml:6: sandbox\.processes: .*1/);
    has(problems, /tools\/lookup\.yaml:7: sandbox\.read: unknown field "read"/);
  });

  it('an openai-compatible agent needs a base URL: its own or SWITCHYARD_MODEL_BASE_URL', () => {
    const agent = 'id: llm\ndescription: d\ninstructions: i\nmodel: { provider: openai-compatible, name: m }\n';
    const root = project({ 'agents/llm.yaml': agent });
    const problems = problemsOf(root);
    expect(problems).toEqual([expect.stringMatching(/agents\/llm\.yaml:4: model\.base_url: an openai-compatible model needs a base URL: set model\.base_url in this file or SWITCHYARD_MODEL_BASE_URL/)]);
    expect(loadDefinitions(root, { modelBaseUrl: 'http://127.0.0.1:11434/v1' }).agents.has('llm')).toBe(true);
    writeFileSync(join(root, 'agents', 'llm.yaml'), agent.replace('name: m', 'name: m, base_url: "http://127.0.0.1:11434/v1"'));
    expect(loadDefinitions(root).agents.has('llm')).toBe(true);
  });

  it('a tool\'s and a workflow\'s input_schema must be valid JSON Schemas, each problem with its path', () => {
    const root = project({
      'tools/lookup.yaml': `${TOOL}input_schema:\n  type: object\n  requried: [q]\n  properties:\n    q: { type: strin }\n    n: { type: integer, minimum: "1" }\n    p: { type: string, pattern: "(" }\n`,
      'tools/lookup.ts': '',
      'workflows/w.yaml': 'id: w\ndescription: d\ninput_schema: { type: object, properties: 5, required: a }\ntasks: [{ id: x, tool: lookup }]\n',
    });
    const problems = problemsOf(root);
    has(problems, /tools\/lookup\.yaml:\d+: input_schema\.requried: not a JSON Schema keyword \(misspelt\?\)/);
    has(problems, /tools\/lookup\.yaml:\d+: input_schema\.properties\.q\.type: must be one of null, boolean, object, array, number, string, integer/);
    has(problems, /tools\/lookup\.yaml:\d+: input_schema\.properties\.n\.minimum: must be a number/);
    has(problems, /tools\/lookup\.yaml:\d+: input_schema\.properties\.p\.pattern: must be a valid regular expression/);
    has(problems, /workflows\/w\.yaml:\d+: input_schema\.properties: must be an object of schemas/);
    has(problems, /workflows\/w\.yaml:\d+: input_schema\.required: must be a list of property names/);
    expect(problems).toHaveLength(6);
  });

  it('the JSON Schema check agrees with ajv (strict) on valid and invalid schemas', () => {
    const ajv = new Ajv2020({ strict: true, allErrors: true, validateFormats: false });
    const schemas: unknown[] = [
      { type: 'object', required: ['a'], properties: { a: { type: 'string', minLength: 1 }, b: { type: ['integer', 'null'], minimum: 0 } }, additionalProperties: false },
      { type: 'array', items: { enum: ['x', 'y'] }, minItems: 1, uniqueItems: true },
      { anyOf: [{ type: 'string', format: 'email' }, { const: 3 }], description: 'either' },
      { type: 'object', patternProperties: { '^x-': { type: 'number', multipleOf: 0.5 } }, $defs: { n: { type: 'number' } } },
      true,
      { type: 'strin' }, { properties: 5 }, { required: 'a' }, { minimum: 'q' }, { requried: ['a'] }, { minLength: -1 },
      { anyOf: [] }, { items: { type: 'nope' } }, { multipleOf: 0 }, { enum: 'a' }, 5,
    ];
    for (const schema of schemas) {
      let ajvValid: boolean;
      try {
        ajv.compile(schema as object);
        ajvValid = true;
      } catch {
        ajvValid = false;
      }
      expect(jsonSchemaProblems(schema).length === 0, JSON.stringify(schema)).toBe(ajvValid);
    }
  });

  it('an empty or wrong project directory is an error, not an engine with nothing to run', () => {
    const empty = project({ 'tools/lookup.yaml': TOOL, 'tools/lookup.ts': '', 'README.md': 'no definitions here' });
    expect(problemsOf(empty)).toEqual([expect.stringMatching(/: no workflows, tasks or agents: a project holds YAML files under workflows\/, tasks\/ or agents\/.*is SWITCHYARD_PROJECT_DIR the right directory\?/)]);
    expect(problemsOf(join(empty, 'missing'))).toEqual([expect.stringMatching(/missing: project directory does not exist/)]);
    expect(problemsOf(join(empty, 'README.md'))).toEqual([expect.stringMatching(/README\.md: not a directory/)]);
  });

  it('placeholdersOf finds every placeholder with its field, and the malformed ones', () => {
    expect(placeholdersOf({ a: ['x {{ input.a }} {{tasks.t.output}}', '{{ input.b }'], b: 1 }, 'input')).toEqual([
      { field: 'input.a.0', text: '{{ input.a }}', path: ['input', 'a'] },
      { field: 'input.a.0', text: '{{tasks.t.output}}', path: ['tasks', 't', 'output'] },
      { field: 'input.a.1', text: '{{ input.b }', path: undefined },
    ]);
  });
});
