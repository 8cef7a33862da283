/**
 * A throwaway PostgreSQL cluster for tests: `initdb` into a temporary directory, `pg_ctl start` on
 * 127.0.0.1 and a free port (its Unix socket inside the same directory, no system service touched), and
 * `stop()` stops it and removes the directory. Reusable by any test that needs a real server (the store
 * contract, engines on PostgreSQL, several replicas on one database).
 *
 * PostgreSQL refuses to run as root. As root, the cluster runs as the `postgres` user that Debian's package
 * creates (`runuser -u postgres --`), in a directory handed to that user; as anyone else, as that user.
 *
 * Binaries: SWITCHYARD_PG_BIN (a directory holding initdb and pg_ctl), else the newest
 * /usr/lib/postgresql/<version>/bin (Debian), else initdb and pg_ctl on PATH. `findPostgres()` says why they
 * are missing; `postgresPolicy()` turns that into fail (under CI) or skip (elsewhere), like the stack binaries.
 *
 * The cluster listens on loopback only and authenticates TCP connections by password (scram-sha-256), so
 * URLs carry a password as they do in production, and redaction is tested against a real one. It runs with
 * fsync off unless `durable` is asked for: tests kill engines, never the server.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export const TEST_PG_USER = 'switchyard';

export interface PostgresBinaries {
  readonly initdb: string;
  readonly pgCtl: string;
}

export interface PostgresLookup {
  readonly binaries?: PostgresBinaries;
  /** Why a cluster cannot be started here, for a skip reason or a failure message. */
  readonly reason?: string;
}

export interface PostgresCluster {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** The temporary directory (data directory, socket, log); removed by stop(). */
  readonly dir: string;
  /** URL of a database of this cluster (default `postgres`). */
  url(database?: string): string;
  /** Creates an empty database and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Runs one SQL statement as the cluster's superuser (database `postgres` unless given). */
  sql<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, params?: unknown[], database?: string): Promise<R[]>;
  /** The server's log so far (for failure messages). */
  log(): string;
  /** Stops the server (immediate shutdown) and removes the directory; safe to call twice. */
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** fsync and synchronous commit on (default off: a throwaway cluster whose server is never killed). */
  readonly durable?: boolean;
  readonly maxConnections?: number;
}

/** Where initdb and pg_ctl are, or why they are not. */
export function findPostgres(): PostgresLookup {
  const candidates: string[] = [];
  if (process.env['SWITCHYARD_PG_BIN']) candidates.push(process.env['SWITCHYARD_PG_BIN']);
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => join(debian, v, 'bin')));
  }
  for (const dir of candidates) {
    if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return { binaries: { initdb: join(dir, 'initdb'), pgCtl: join(dir, 'pg_ctl') } };
  }
  const onPath = (name: string) => spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
  const initdb = onPath('initdb');
  const pgCtl = onPath('pg_ctl');
  if (initdb && pgCtl) return { binaries: { initdb, pgCtl } };
  return {
    reason: 'PostgreSQL server binaries (initdb, pg_ctl) not found in SWITCHYARD_PG_BIN, /usr/lib/postgresql/*/bin or PATH: '
      + 'install them with `apt-get install -y postgresql` (Debian; .ci/run does this), or set SWITCHYARD_PG_BIN',
  };
}

/** Under CI a missing server fails the tests that need it; elsewhere they are skipped with the reason shown. */
export function postgresPolicy(lookup: PostgresLookup = findPostgres()): 'run' | 'fail' | 'skip' {
  if (lookup.binaries) return 'run';
  return process.env['CI'] ? 'fail' : 'skip';
}

/** The user the server runs as: ourselves, or `postgres` when we are root. */
function serverUser(): { name: string; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  const uid = id('-u');
  if (uid.status !== 0) {
    throw new Error('PostgreSQL refuses to run as root and there is no `postgres` user to run it as (Debian\'s postgresql package creates one): '
      + 'install the package, or run the tests as an unprivileged user');
  }
  return { name: 'postgres', uid: Number(uid.stdout.trim()), gid: Number(id('-g').stdout.trim()) };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Every cluster this process started and has not stopped yet: stopped on exit, whatever happened. */
const running = new Set<() => void>();
let exitHooked = false;
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  const stopAll = () => {
    for (const stop of [...running]) stop();
  };
  process.once('exit', stopAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stopAll();
      process.kill(process.pid, signal);
    });
  }
}

/** Starts a throwaway cluster; throws (with the server's log) when it cannot. Call `stop()` in an afterAll. */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresCluster> {
  const lookup = findPostgres();
  if (!lookup.binaries) throw new Error(lookup.reason);
  const { initdb, pgCtl } = lookup.binaries;
  const user = serverUser();
  const asServer = (command: string, args: string[]): [string, string[]] => (user ? ['runuser', ['-u', user.name, '--', command, ...args]] : [command, args]);
  const run = (command: string, args: string[], timeoutMs: number) => {
    const [cmd, argv] = asServer(command, args);
    return spawnSync(cmd, argv, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  };

  const dir = mkdtempSync(join(tmpdir(), 'switchyard-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const password = randomBytes(18).toString('base64url');
  const cleanupDir = () => rmSync(dir, { recursive: true, force: true });
  try {
    writeFileSync(join(dir, 'pwfile'), `${password}\n`, { mode: 0o600 });
    if (user) {
      chownSync(dir, user.uid, user.gid);
      chownSync(join(dir, 'pwfile'), user.uid, user.gid);
    }
    const init = run(initdb, ['-D', data, '-U', TEST_PG_USER, `--pwfile=${join(dir, 'pwfile')}`, '--auth-local=trust', '--auth-host=scram-sha-256',
      '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'], 120_000);
    if (init.status !== 0) throw new Error(`initdb failed (exit ${String(init.status)}): ${init.stderr || init.stdout || init.error?.message}`);
    rmSync(join(dir, 'pwfile'));
  } catch (error) {
    cleanupDir();
    throw error;
  }

  const settings = [
    'listen_addresses=127.0.0.1', `unix_socket_directories=${dir}`, `max_connections=${options.maxConnections ?? 100}`,
    ...(options.durable ? [] : ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off']),
  ];
  let port = 0;
  let lastFailure = '';
  // A free port can be taken between the probe and the server's bind: try another.
  for (let attempt = 0; attempt < 3 && port === 0; attempt++) {
    const candidate = await freePort();
    const opts = [...settings, `port=${candidate}`].map((s) => `-c ${s}`).join(' ');
    const start = run(pgCtl, ['-D', data, '-l', logFile, '-w', '-t', '60', '-o', opts, 'start'], 90_000);
    if (start.status === 0) port = candidate;
    else lastFailure = `${start.stderr || start.stdout}\n${existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''}`;
  }
  if (port === 0) {
    cleanupDir();
    throw new Error(`pg_ctl could not start PostgreSQL:\n${lastFailure}`);
  }

  let stopped = false;
  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    running.delete(stopSync);
    const [cmd, argv] = asServer(pgCtl, ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop']);
    try {
      execFileSync(cmd, argv, { stdio: 'ignore', timeout: 40_000 });
    } catch {
      // Already stopped, or the directory is gone: nothing left to stop.
    }
    cleanupDir();
  };
  running.add(stopSync);
  hookExit();

  const url = (database = 'postgres') => `postgres://${TEST_PG_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  let databases = 0;
  const cluster: PostgresCluster = {
    host: '127.0.0.1', port, user: TEST_PG_USER, password, dir,
    url,
    async sql<R extends pg.QueryResultRow>(text: string, params: unknown[] = [], database = 'postgres') {
      const client = new pg.Client({ connectionString: url(database), connectionTimeoutMillis: 10_000 });
      await client.connect();
      try {
        return (await client.query<R>(text, params)).rows;
      } finally {
        await client.end();
      }
    },
    async createDatabase(name = `test_${process.pid}_${++databases}`) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${name}`);
      await cluster.sql(`CREATE DATABASE ${name}`);
      return url(name);
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    async stop() {
      stopSync();
    },
  };
  return cluster;
}
