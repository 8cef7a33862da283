/**
 * Shared helpers of the config tests: repository paths, YAML loading, running binaries, and the stack
 * binaries (scripts/stack/binaries.ts: env PROMTOOL_BIN, AMTOOL_BIN, ... or scripts/stack-binaries.sh).
 * When a binary is missing the tests that need it fail with a clear message under CI (process.env.CI set)
 * and are skipped with a visible reason otherwise.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { findStackBinary, missingBinaryPolicy, type StackBinaryLookup, type StackBinaryName } from '../../scripts/stack/binaries.ts';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const repoPath = (...parts: string[]): string => join(REPO, ...parts);

export function readYaml<T = unknown>(relativePath: string): T {
  // merge: resolve `<<` keys as Compose does.
  return parse(readFileSync(repoPath(relativePath), 'utf8'), { merge: true }) as T;
}

const execFileAsync = promisify(execFile);

/** A docker-compose.yml service, as far as the config tests read it. */
export interface ComposeService {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}

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

export type ToolLookup = StackBinaryLookup;

/** A stack binary by name (env var first, then scripts/stack-binaries.sh; see scripts/stack/binaries.ts). */
export async function findTool(name: StackBinaryName): Promise<ToolLookup> {
  return findStackBinary(name);
}

export { missingBinaryPolicy };
