import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/engine.ts';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-npm-start-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Pids of the processes whose command line mentions `marker` (a path only this test uses). */
function processesMentioning(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (environ.includes(marker)) pids.push(Number(entry));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return pids;
}

const portIsFree = (port: number) => new Promise<boolean>((resolve) => {
  const server = net.createServer().once('error', () => resolve(false)).listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
});

describe('npm start', () => {
  // npm runs a script through `sh -c`, and forwards SIGTERM to that shell only: with `a && b` the shell
  // dies and the engine, its child, lives on holding the port. `exec` makes the engine the shell itself.
  it('stops the engine when npm is stopped (SIGTERM): the port is free and no engine process remains', async () => {
    const db = join(dir, 'npm-start.db');
    const npm = spawn('npm', ['start', '--silent'], {
      env: { ...process.env, SWITCHYARD_PORT: '0', SWITCHYARD_DB: db, OTEL_SDK_DISABLED: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    npm.stdout!.on('data', (chunk: Buffer) => (out += chunk));
    npm.stderr!.on('data', (chunk: Buffer) => (out += chunk));
    const closed = new Promise<number | null>((resolve) => npm.once('close', resolve));
    try {
      const url = await eventually(async () => /"url":"(http:\/\/[^"]+)"/.exec(out)?.[1], (u) => u !== undefined || npm.exitCode !== null, 60_000);
      expect(url, out).toBeDefined();
      const port = Number(new URL(url!).port);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect(processesMentioning(db).length).toBeGreaterThan(0);

      npm.kill('SIGTERM');
      const npmExit = await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 30_000, 'still running'))]);
      expect(npmExit, 'npm itself did not exit within 30 s of SIGTERM').not.toBe('still running');
      await eventually(async () => processesMentioning(db), (pids) => pids.length === 0, 30_000);
      expect(await portIsFree(port)).toBe(true);
      expect(out).toMatch(/"msg":"shutdown complete"/);
    } finally {
      for (const pid of processesMentioning(db)) process.kill(pid, 'SIGKILL');
    }
  }, 120_000);
});
