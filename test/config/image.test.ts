/**
 * The Dockerfile's final stage, read as the engine reads its environment: every path the engine writes by
 * default must be one the image's user may write. (The compose test, test/compose, runs the image for real;
 * this catches the fault without podman: with PostgreSQL the runtime directory once defaulted to
 * /app/data/tool-processes, under the root-owned working directory, and both replicas exited 2.)
 */
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { readYaml, repoPath } from './tools.ts';

interface FinalStage {
  readonly env: Record<string, string>;
  readonly user: string;
  readonly workdir: string;
  /** Directories the RUN lines hand to the image's user (`chown node:node <dir>`). */
  readonly chowned: string[];
}

/** ENV, USER, WORKDIR and chowned directories of the Dockerfile's last stage (line continuations joined). */
function finalStage(dockerfile: string): FinalStage {
  const lines = dockerfile.replace(/\\\n/g, ' ').split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
  const last = lines.map((line, i) => [line, i] as const).filter(([line]) => /^FROM\s/i.test(line)).at(-1)![1];
  const stage = { env: {} as Record<string, string>, user: 'root', workdir: '/', chowned: [] as string[] };
  for (const line of lines.slice(last + 1)) {
    const [instruction, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (instruction === 'ENV') for (const [, key, value] of args.matchAll(/(\w+)=(\S+)/g)) stage.env[key!] = value!;
    if (instruction === 'USER') stage.user = args;
    if (instruction === 'WORKDIR') stage.workdir = args;
    if (instruction === 'RUN') for (const [, dirs] of args.matchAll(/chown\s+(?:-R\s+)?node:node\s+([^&;]+)/g)) stage.chowned.push(...dirs!.trim().split(/\s+/));
  }
  return stage;
}

interface Compose { services: Record<string, { environment?: Record<string, string> }> }

/**
 * A service's environment as compose passes it with nothing set on the host: `${VAR:-default}` gives the
 * default, and the secrets mounted at /run/secrets/<name> are the committed demo files.
 */
const composeEnv = (env: Record<string, string> = {}) => Object.fromEntries(Object.entries(env).map(([key, value]) => [
  key, value.replace(/\$\{\w+:-([^}]*)\}/g, '$1').replace(/^\/run\/secrets\//, `${repoPath('compose/demo-secrets')}/`),
]));

describe('Dockerfile', () => {
  const stage = finalStage(readFileSync(repoPath('Dockerfile'), 'utf8'));
  const compose = readYaml<Compose>('docker-compose.yml');
  /** Writable by the image's user: /tmp (world-writable; a tmpfs in docker-compose.yml) and what the image chowns to it. */
  const writable = (path: string) => ['/tmp', ...stage.chowned].some((dir) => path === dir || path.startsWith(`${dir}/`));

  it('runs as the unprivileged node user, in a working directory it does not own', () => {
    expect(stage.user).toBe('node');
    expect(writable(stage.workdir)).toBe(false);
  });

  for (const replica of ['engine', 'engine-2']) {
    it(`gives ${replica} of docker-compose.yml (PostgreSQL) a tool process directory its user may write`, () => {
      // The environment the engine sees: the image's, then compose's (process.cwd() is the image's WORKDIR there).
      const env = { ...stage.env, ...composeEnv(compose.services[replica]!.environment) };
      const config = loadConfig(env);
      expect(config.store.kind).toBe('postgres');
      expect(config.runtimeDir.startsWith(`${stage.workdir}/`)).toBe(false);
      expect(writable(config.runtimeDir), config.runtimeDir).toBe(true);
    });
  }

  it('gives the SQLite default (no compose) a store and tool process directory its user may write', () => {
    const config = loadConfig({ ...stage.env, SWITCHYARD_API_KEYS_FILE: repoPath('compose/demo-secrets/api-keys') });
    expect(config.store).toMatchObject({ kind: 'sqlite' });
    expect(writable((config.store as { path: string }).path)).toBe(true);
    expect(writable(config.runtimeDir), config.runtimeDir).toBe(true);
  });

  it('would catch the old default: without SWITCHYARD_RUNTIME_DIR the PostgreSQL engine writes under the working directory', () => {
    const { SWITCHYARD_RUNTIME_DIR: _, ...withoutRuntimeDir } = stage.env;
    const env = { ...withoutRuntimeDir, ...composeEnv(compose.services['engine']!.environment) };
    // Relative to the working directory, which in the image is WORKDIR: not the user's.
    const underWorkdir = relative(process.cwd(), loadConfig(env).runtimeDir);
    expect(underWorkdir).toBe(join('data', 'tool-processes'));
    expect(writable(join(stage.workdir, underWorkdir))).toBe(false);
  });
});
