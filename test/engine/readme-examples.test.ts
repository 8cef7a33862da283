import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/engine.ts';

/**
 * The README's commands, run as a newcomer would: the engine started by the README's own `npm start` line,
 * the curl blocks of "Start here" and "The API by example" run verbatim with bash (the one change: the
 * README's port, 8080, becomes the free port the engine took), every status checked against the comment
 * above each command (`# 202`).
 */
const README = readFileSync('README.md', 'utf8');
const README_URL = 'http://127.0.0.1:8080';
const dir = mkdtempSync(join(tmpdir(), 'switchyard-readme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The ```sh blocks between a heading and the next heading of the same or a higher level (outside code blocks). */
function shellBlocks(heading: string): string[] {
  const lines = README.split('\n');
  const start = lines.indexOf(heading);
  if (start === -1) throw new Error(`README has no heading "${heading}"`);
  const level = /^#+/.exec(heading)![0].length;
  const blocks: string[] = [];
  let block: string[] | undefined;
  let fenced = false;
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('```')) {
      if (!fenced && line === '```sh') block = [];
      else if (fenced && block) {
        blocks.push(block.join('\n'));
        block = undefined;
      }
      fenced = !fenced;
      continue;
    }
    if (!fenced && new RegExp(`^#{1,${level}} `).test(line)) break;
    block?.push(line);
  }
  return blocks;
}

/** Runs a bash script; every curl reports its status on stderr as `HTTP <code>` (the README's own output is untouched). */
function runBash(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const prelude = 'set -u -o pipefail\ncurl() { command curl -S -w \'%{stderr}HTTP %{http_code}\\n\' "$@"; }\n';
  return new Promise((resolve) => {
    const bash = spawn('bash', ['-c', prelude + script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    bash.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    bash.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    bash.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
const statusesOf = (stderr: string) => [...stderr.matchAll(/^HTTP (\d{3})$/gm)].map((m) => Number(m[1]));

describe('the README', () => {
  it('first screen: the run and test commands are together; the npm start line with its demo key serves every route example', async () => {
    const [setup, firstCurl] = shellBlocks('## Start here: run it, test it (Node 24, no Docker)');
    const commands = setup!.split('\n').map((line) => line.replace(/\s+#.*$/, '').trim()).filter(Boolean);
    expect(commands).toEqual(['npm ci', expect.stringMatching(/npm start$/), 'npm test']);
    expect(README.split('\n').findIndex((line) => line.includes('npm test'))).toBeLessThan(30);
    const start = commands[1]!;

    // The README's line as it stands, in its own process group (npm, and the engine it execs) to stop at the end.
    const engine = spawn('bash', ['-c', start], {
      env: { ...process.env, SWITCHYARD_PORT: '0', SWITCHYARD_DB: join(dir, 'readme.db'), SWITCHYARD_RUNTIME_DIR: join(dir, 'tools'), OTEL_SDK_DISABLED: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    });
    let log = '';
    engine.stdout!.on('data', (chunk: Buffer) => (log += chunk));
    engine.stderr!.on('data', (chunk: Buffer) => (log += chunk));
    const closed = new Promise((resolve) => engine.once('close', resolve));
    try {
      const url = await eventually(async () => /"url":"(http:\/\/[^"]+)"/.exec(log)?.[1], (u) => u !== undefined || engine.exitCode !== null, 60_000);
      expect(url, log).toBeDefined();
      expect(log).toMatch(/"api_keys":\["demo"\]/);

      const first = await runBash(firstCurl!.replaceAll(README_URL, url!));
      expect(statusesOf(first.stderr), first.stderr).toEqual([200]);
      expect(JSON.parse(first.stdout)).toMatchObject({ target: 'support_triage', status: 'success' });

      const examples = shellBlocks('### The API by example');
      const script = examples.join('\n');
      expect(script).toContain(README_URL);
      const expected = [...script.matchAll(/^# (\d{3})\b/gm)].map((m) => Number(m[1]));
      expect(expected.length).toBe([...script.matchAll(/\bcurl -s\b/g)].length);
      // Every route of the API table is exercised.
      for (const route of ['/healthz', '/readyz', '/api/v1/definitions', '/api/v1/openapi.json', '/workflows/', '/tasks/', '/agents/', '/executions/sync', '/cancel', '/resume', '/api/v1/executions?']) {
        expect(script).toContain(route);
      }
      // The ids the examples captured are printed after them, so that an empty one (a failed capture) shows.
      const captured = [...new Set([...script.matchAll(/^([A-Z_]+)=\$\(/gm)].map((m) => m[1]!))];
      const run = await runBash(`${script.replaceAll(README_URL, url!)}\nfor name in ${captured.join(' ')}; do echo "captured $name=\${!name}" >&2; done`);
      expect(run.code, run.stderr).toBe(0);
      expect(statusesOf(run.stderr), `${run.stderr}\n${run.stdout}`).toEqual(expected);
      for (const name of captured) expect(run.stderr).toMatch(new RegExp(`^captured ${name}=[0-9a-f-]{36}$`, 'm'));
    } finally {
      if (engine.exitCode === null && engine.signalCode === null) process.kill(-engine.pid!, 'SIGTERM');
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 20_000))]);
      try {
        process.kill(-engine.pid!, 'SIGKILL');
      } catch {
        // The group is gone: the engine stopped on SIGTERM.
      }
    }
  }, 180_000);
});
