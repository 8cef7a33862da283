import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DefinitionError, loadDefinitions } from '../../src/engine/definitions.ts';
import { render } from '../../src/engine/templates.ts';

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

function problemsOf(root: string): string[] {
  try {
    loadDefinitions(root);
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
    has(/tools\/u\.yaml: env\.0: must be an environment variable name/);
    has(/tools\/t\.yaml: script: file "missing\.ts" does not exist/);
    has(/agents\/a\.yaml: model\.provider: /);
    has(/workflows\/w\.yaml: tasks\.0\.tool: unknown tool "nope"/);
    has(/workflows\/w\.yaml: tasks\.1\.id: duplicate task id "one"/);
    has(/workflows\/w\.yaml: tasks\.1\.agent: unknown agent "ghost"/);
    has(/workflows\/v\.yaml: tasks\.0: a task has exactly one of tool, agent or pause/);
    has(/workflows\/broken\.yaml \(line \d+\): not valid YAML/);
    has(/workflows\/bad id\.yaml: id: must be 1-64 characters/);
  });

  it('rejects a duplicate id across files', () => {
    const root = project({
      'workflows/a.yaml': 'id: same\ndescription: d\ntasks: [{ id: x, pause: true }]\n',
      'workflows/b.yaml': 'id: same\ndescription: d\ntasks: [{ id: x, pause: true }]\n',
    });
    expect(problemsOf(root)).toEqual([expect.stringMatching(/b\.yaml: id: "same" is already defined in .*a\.yaml/)]);
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
