import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * First run on a machine whose Node is too old: `npm ci` refuses before installing (engine-strict), and
 * `npm start`, `npm test` and the other node scripts stop at scripts/preflight.cjs with one line saying
 * which Node is needed and how to get it.
 */
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string }; scripts: Record<string, string> };
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A node on PATH older than 24 (this machine's own, before .ci/node-env.sh), if there is one. */
function oldNode(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'node');
    if (!existsSync(candidate)) continue;
    try {
      const major = Number(execFileSync(candidate, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).trim());
      if (major < 24) return candidate;
    } catch {
      // not runnable: try the next
    }
  }
  return undefined;
}
const OLD_NODE = oldNode();
const NEEDS = /^switchyard needs Node\.js (\d+) or newer, but this is Node\.js [\d.]+ \(.+\): run `nvm install` \(it reads \.nvmrc\), or get Node \1 from https:\/\/nodejs\.org, or `source \.ci\/node-env\.sh`.*\n$/;

describe('first run', () => {
  it('package.json engines, .nvmrc, .npmrc and .ci/node-env.sh agree on Node 24; every script that runs TypeScript checks first', () => {
    expect(pkg.engines.node).toBe('>=24');
    expect(readFileSync('.nvmrc', 'utf8').trim()).toBe('24');
    expect(readFileSync('.npmrc', 'utf8')).toMatch(/^engine-strict=true$/m);
    expect(readFileSync('.ci/node-env.sh', 'utf8')).toMatch(/^NODE_MAJOR=24$/m);
    for (const [name, command] of Object.entries(pkg.scripts)) {
      if (/\bnode (?!scripts\/preflight)|vitest|tsc/.test(command) && name !== 'typecheck') expect(command, name).toMatch(/^node scripts\/preflight\.cjs && /);
    }
  });

  it('the preflight passes silently on this Node, and refuses a Node below what package.json asks with one line', () => {
    const ok = spawnSync(process.execPath, ['scripts/preflight.cjs'], { encoding: 'utf8' });
    expect([ok.status, ok.stdout, ok.stderr]).toEqual([0, '', '']);
    // The same script in a project that asks for more than this Node: the logic, on any machine.
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-preflight-'));
    dirs.push(dir);
    mkdirSync(join(dir, 'scripts'));
    copyFileSync('scripts/preflight.cjs', join(dir, 'scripts', 'preflight.cjs'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ engines: { node: '>=99' } }));
    const refused = spawnSync(process.execPath, [join(dir, 'scripts', 'preflight.cjs')], { encoding: 'utf8' });
    expect(refused.status).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(NEEDS);
    expect(refused.stderr).toContain('Node.js 99 or newer');
  });

  it.skipIf(OLD_NODE === undefined)('on this machine\'s old Node: npm start and npm test print the one line and fail; npm ci refuses before installing', () => {
    const env = { ...process.env, PATH: `${dirname(OLD_NODE!)}${delimiter}${process.env.PATH}` };
    for (const script of ['start', 'test']) {
      const run = spawnSync('npm', [script], { encoding: 'utf8', env });
      expect(run.status, script).toBe(1);
      expect(run.stderr, script).toMatch(NEEDS);
      expect(run.stderr.trim().split('\n'), script).toHaveLength(1);
      // stdout holds npm's own "> switchyard@0.1.0 start" header and nothing else: nothing else ran.
      expect(run.stdout.split('\n').filter((line) => line.trim() && !line.startsWith('> ')), script).toEqual([]);
    }
    // npm ci in a copy (this checkout's node_modules stay as they are).
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-npm-ci-'));
    dirs.push(dir);
    for (const file of ['package.json', 'package-lock.json', '.npmrc']) copyFileSync(file, join(dir, file));
    const ci = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { encoding: 'utf8', env, cwd: dir });
    expect(ci.status).not.toBe(0);
    expect(ci.stderr).toMatch(/EBADENGINE/);
    expect(ci.stderr).toMatch(/Required: \{"node":">=24"\}/);
    expect(existsSync(join(dir, 'node_modules'))).toBe(false);
  }, 60_000);
});
