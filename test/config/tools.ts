/**
 * Shared helpers of the config tests: repository paths, YAML loading, and the promtool/amtool binaries.
 *
 * Binaries come from the stack binaries interface (test/support/stack-binaries.ts, env PROMTOOL_BIN /
 * AMTOOL_BIN). When a binary is missing the tests that need it fail with a clear message under CI
 * (process.env.CI set) and are skipped with a visible reason otherwise.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const repoPath = (...parts: string[]): string => join(REPO, ...parts);

export function readYaml<T = unknown>(relativePath: string): T {
  // merge: resolve `<<` keys as Compose does.
  return parse(readFileSync(repoPath(relativePath), 'utf8'), { merge: true }) as T;
}

const execFileAsync = promisify(execFile);

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a binary and returns its exit code and output (never throws on a non-zero exit). */
export async function run(bin: string, args: readonly string[], cwd = REPO, env: NodeJS.ProcessEnv = process.env): Promise<RunResult> {
  try {
    const { stdout, stderr } = await execFileAsync(bin, [...args], { cwd, env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== 'number') throw error;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message };
  }
}

export interface ToolLookup {
  readonly path?: string;
  /** Why the binary is missing, for the skip or failure message. */
  readonly reason?: string;
}

type BinaryName = 'promtool' | 'amtool' | 'prometheus' | 'alertmanager' | 'tempo';

const ENV_VARS: Record<BinaryName, string> = {
  promtool: 'PROMTOOL_BIN',
  amtool: 'AMTOOL_BIN',
  prometheus: 'PROMETHEUS_BIN',
  alertmanager: 'ALERTMANAGER_BIN',
  tempo: 'TEMPO_BIN',
};

let fromSupport: Promise<Partial<Record<BinaryName, string>> | undefined> | undefined;

/** The binaries of test/support/stack-binaries.ts, when that module exists and can provide them. */
function supportBinaries(): Promise<Partial<Record<BinaryName, string>> | undefined> {
  fromSupport ??= (async () => {
    const modulePath = repoPath('test/support/stack-binaries.ts');
    if (!existsSync(modulePath)) return undefined;
    try {
      const mod = (await import(pathToFileURL(modulePath).href)) as { stackBinaries?: () => Partial<Record<BinaryName, string>> | Promise<Partial<Record<BinaryName, string>>> };
      return mod.stackBinaries ? await mod.stackBinaries() : undefined;
    } catch (error) {
      process.stderr.write(`config tests: stackBinaries() failed: ${String(error)}\n`);
      return undefined;
    }
  })();
  return fromSupport;
}

export async function findTool(name: BinaryName): Promise<ToolLookup> {
  const envVar = ENV_VARS[name];
  const fromEnv = process.env[envVar];
  if (fromEnv) {
    return existsSync(fromEnv) ? { path: fromEnv } : { reason: `${envVar}=${fromEnv} does not exist` };
  }
  const support = await supportBinaries();
  const path = support?.[name];
  if (path && existsSync(path)) return { path };
  return {
    reason: `${name} not found: set ${envVar}, or build the stack binaries (scripts/stack-binaries.sh, via test/support/stack-binaries.ts)`,
  };
}

/** Under CI a missing binary is a failure; elsewhere the test is skipped with the reason printed. */
export function missingBinaryPolicy(lookup: ToolLookup): 'run' | 'fail' | 'skip' {
  if (lookup.path) return 'run';
  return process.env['CI'] ? 'fail' : 'skip';
}
