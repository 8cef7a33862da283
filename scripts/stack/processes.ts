/**
 * Child processes of the stack harness: each in its own process group (so a component's children die
 * with it), its output in a log file, stopped by group. Nothing may outlive the harness, even when a
 * test fails or the harness itself is killed:
 *   - every started group is registered; `exit`, SIGINT and SIGTERM kill the registered groups;
 *   - a reaper process (reaper.ts) watches this process and kills the groups listed in a file when it
 *     disappears without cleaning up (SIGKILL, a crashed vitest worker).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

const running = new Set<ManagedProcess>();
let pgidFile: string | undefined;
let reaper: ChildProcess | undefined;
let hooksInstalled = false;

/** Kills every registered process group now (synchronous: safe in an `exit` handler). */
export function killAllSync(): void {
  for (const proc of running) proc.killGroupSync('SIGKILL');
  running.clear();
  writePgids();
}

function writePgids(): void {
  if (!pgidFile) return;
  try {
    writeFileSync(pgidFile, [...running].map((p) => String(p.pid)).join('\n'));
  } catch {
    // the directory is gone (the harness removed it): nothing left to reap
  }
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAllSync();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

/** Starts the reaper once per harness process; it kills the groups in `<dir>/pgids` if we die. */
export function startReaper(dir: string): void {
  if (reaper) return;
  pgidFile = join(dir, 'pgids');
  writePgids();
  reaper = spawn(process.execPath, [join(import.meta.dirname, 'reaper.ts'), String(process.pid), pgidFile], {
    detached: true,
    stdio: 'ignore',
  });
  reaper.unref();
}

export function stopReaper(): void {
  if (reaper?.pid) {
    try {
      process.kill(reaper.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  reaper = undefined;
  pgidFile = undefined;
}

export interface ProcessSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Appended to (a restarted component keeps one log). */
  readonly logFile: string;
}

export class ManagedProcess {
  readonly spec: ProcessSpec;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #exitInfo: string | undefined;

  constructor(spec: ProcessSpec) {
    this.spec = spec;
  }

  get name(): string {
    return this.spec.name;
  }

  get pid(): number {
    return this.#child?.pid ?? -1;
  }

  get alive(): boolean {
    return this.#child !== undefined && this.#exitInfo === undefined;
  }

  /** How the last run ended ("exit 1", "signal SIGKILL"), or undefined while running. */
  get exitInfo(): string | undefined {
    return this.#exitInfo;
  }

  start(): this {
    if (this.alive) throw new Error(`${this.name} is already running (pid ${this.pid})`);
    installHooks();
    const fd = openSync(this.spec.logFile, 'a');
    writeFileSync(fd, `\n=== ${new Date().toISOString()} start: ${this.spec.command} ${this.spec.args.join(' ')}\n`);
    const child = spawn(this.spec.command, [...this.spec.args], {
      cwd: this.spec.cwd,
      env: this.spec.env ?? process.env,
      stdio: ['ignore', fd, fd],
      detached: true, // own process group: we stop the group, children included
    });
    closeSync(fd);
    this.#child = child;
    this.#exitInfo = undefined;
    this.#exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exitInfo = signal ? `signal ${signal}` : `exit ${String(code)}`;
        running.delete(this);
        writePgids();
        resolve();
      });
      child.once('error', (error) => {
        this.#exitInfo = `spawn error: ${error.message}`;
        running.delete(this);
        writePgids();
        resolve();
      });
    });
    running.add(this);
    writePgids();
    return this;
  }

  killGroupSync(signal: NodeJS.Signals): void {
    if (!this.#child?.pid) return;
    for (const pgid of new Set([this.#child.pid, ...descendantPgids(this.#child.pid)])) {
      try {
        process.kill(-pgid, signal);
      } catch {
        // group already gone
      }
    }
  }

  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves when the process has exited. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.alive) return;
    const pgids = this.#child?.pid ? [this.#child.pid, ...descendantPgids(this.#child.pid)] : [];
    signalGroups(pgids, 'SIGTERM');
    const timer = setTimeout(() => signalGroups(pgids, 'SIGKILL'), graceMs);
    await this.#exited;
    clearTimeout(timer);
    // Whatever the process left behind in its groups (tool subprocesses) goes too.
    signalGroups(pgids, 'SIGKILL');
  }

  /** SIGKILL to the process and every group below it (a crash: nothing gets to clean up). */
  async kill(): Promise<void> {
    if (!this.alive) return;
    this.killGroupSync('SIGKILL');
    await this.#exited;
  }

  /** The last `lines` lines of the log. */
  tail(lines = 30): string {
    if (!existsSync(this.spec.logFile)) return '(no log)';
    const text = readFileSync(this.spec.logFile, 'utf8').trimEnd().split('\n');
    return text.slice(-lines).join('\n');
  }
}

function signalGroups(pgids: readonly number[], signal: NodeJS.Signals): void {
  for (const pgid of new Set(pgids)) {
    try {
      process.kill(-pgid, signal);
    } catch {
      // gone
    }
  }
}

/** Process groups of every descendant of `pid` (tool subprocesses run in groups of their own). */
export function descendantPgids(pid: number): number[] {
  const out = new Set<number>();
  const visit = (p: number, depth: number) => {
    if (depth > 6) return;
    let children: number[] = [];
    try {
      for (const task of readdirSync(`/proc/${p}/task`)) {
        const text = readFileSync(`/proc/${p}/task/${task}/children`, 'utf8').trim();
        if (text) children.push(...text.split(/\s+/).map(Number));
      }
    } catch {
      children = [];
    }
    for (const child of children) {
      const pgid = processGroup(child);
      if (pgid > 0) out.add(pgid);
      visit(child, depth + 1);
    }
  };
  visit(pid, 0);
  return [...out];
}

function processGroup(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return -1;
  }
}

/** Resident set size (VmRSS) of a process in bytes; NaN when it is gone. */
export function rssBytes(pid: number): number {
  try {
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** A port free on 127.0.0.1 right now (distinct from the ones already handed out by this process). */
const handedOut = new Set<number>();
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.on('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port: p } = server.address() as net.AddressInfo;
        server.close(() => resolve(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}
