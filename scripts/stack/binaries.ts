/**
 * The real stack binaries (Collector, Prometheus + promtool, Jaeger, Alertmanager + amtool, the Collector
 * tier: agent and tail-sampling gateways, and VictoriaLogs, the log store) for config and stack tests.
 *
 * Each path comes from its environment variable when set (OTELCOL_BIN, PROMETHEUS_BIN, PROMTOOL_BIN,
 * JAEGER_BIN, ALERTMANAGER_BIN, AMTOOL_BIN, OTELCOL_TIER_BIN, VICTORIALOGS_BIN); the others from scripts/stack-binaries.sh, which builds what is
 * missing into the cache (${SWITCHYARD_CACHE:-~/.cache/switchyard}/stack) and prints their paths. With a
 * warm cache it answers in well under a second; a cold build takes tens of minutes, so `.ci/run` runs the
 * script before the tests, and from a test the script only builds when asked to:
 *   SWITCHYARD_STACK_BUILD=1 builds what is missing; =0 never builds; unset: builds under CI (CI set) only.
 * Without a build, missing binaries are reported (by `findStackBinary`, with the command to run).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface StackBinaries {
  readonly otelcol: string;
  readonly prometheus: string;
  readonly promtool: string;
  readonly jaeger: string;
  readonly alertmanager: string;
  readonly amtool: string;
  /** The Collector tier (collector/builder-tier.yaml): agent.yaml and gateway.yaml. */
  readonly otelcolTier: string;
  /** VictoriaLogs: the stack tests' log store (OTLP logs in, LogsQL out), where users run Loki. */
  readonly victorialogs: string;
}

export type StackBinaryName = keyof StackBinaries;

export const STACK_BINARY_ENV: Readonly<Record<StackBinaryName, string>> = {
  otelcol: 'OTELCOL_BIN',
  prometheus: 'PROMETHEUS_BIN',
  promtool: 'PROMTOOL_BIN',
  jaeger: 'JAEGER_BIN',
  alertmanager: 'ALERTMANAGER_BIN',
  amtool: 'AMTOOL_BIN',
  otelcolTier: 'OTELCOL_TIER_BIN',
  victorialogs: 'VICTORIALOGS_BIN',
};

const NAMES = Object.keys(STACK_BINARY_ENV) as StackBinaryName[];
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const STACK_BINARIES_SCRIPT = resolve(REPO, 'scripts/stack-binaries.sh');

/** Parses the script's `export OTELCOL_BIN=/a PROMETHEUS_BIN=/b ...` line into a name -> path map. */
export function parseExportLine(output: string): Partial<Record<string, string>> {
  const line = output.split('\n').find((l) => l.startsWith('export '));
  if (!line) throw new Error(`scripts/stack-binaries.sh printed no export line:\n${output}`);
  const vars: Partial<Record<string, string>> = {};
  for (const assignment of line.slice('export '.length).trim().split(/\s+/)) {
    const eq = assignment.indexOf('=');
    if (eq > 0) vars[assignment.slice(0, eq)] = assignment.slice(eq + 1);
  }
  return vars;
}

function fromEnvironment(): Partial<Record<StackBinaryName, string>> {
  const found: Partial<Record<StackBinaryName, string>> = {};
  for (const name of NAMES) {
    const value = process.env[STACK_BINARY_ENV[name]];
    if (value) found[name] = isAbsolute(value) ? value : resolve(REPO, value);
  }
  return found;
}

let cached: StackBinaries | undefined;

/**
 * Absolute paths of the eight binaries: environment variables first, then scripts/stack-binaries.sh (which
 * builds what is missing when allowed, see above; its progress goes to this process's stderr). Throws with the script's error
 * (which names the binary, the version and the build log) when a build fails. The paths are not checked
 * for existence when they come from the environment: use `findStackBinary` for a test-friendly answer.
 */
export function stackBinaries(): StackBinaries {
  if (cached) return cached;
  const env = fromEnvironment();
  let merged: Partial<Record<StackBinaryName, string>> = env;
  if (NAMES.some((name) => !env[name])) {
    const build = process.env['SWITCHYARD_STACK_BUILD'];
    const noBuild = build === '0' || (build !== '1' && !process.env['CI']);
    let stdout: string;
    try {
      stdout = execFileSync('bash', [STACK_BINARIES_SCRIPT, ...(noBuild ? ['--no-build'] : [])], {
        cwd: REPO,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        maxBuffer: 1024 * 1024,
      });
    } catch (error) {
      const e = error as { status?: number | null; stdout?: string };
      // --no-build exits 3 when something is missing but still prints every path.
      if (!(noBuild && e.status === 3 && e.stdout)) {
        throw new Error(`scripts/stack-binaries.sh failed (exit ${String(e.status)}); see its messages above`, { cause: error });
      }
      stdout = e.stdout;
    }
    const printed = parseExportLine(stdout);
    merged = { ...env };
    for (const name of NAMES) {
      const path = printed[STACK_BINARY_ENV[name]];
      if (!merged[name] && path) merged[name] = path;
    }
  }
  for (const name of NAMES) {
    if (!merged[name]) throw new Error(`scripts/stack-binaries.sh printed no ${STACK_BINARY_ENV[name]}`);
  }
  cached = merged as StackBinaries;
  return cached;
}

export interface StackBinaryLookup {
  readonly path?: string;
  /** Why the binary is unavailable, for a skip reason or a failure message. */
  readonly reason?: string;
}

/** Like `stackBinaries()[name]`, but never throws: a missing binary comes back with the reason. */
export function findStackBinary(name: StackBinaryName): StackBinaryLookup {
  const envVar = STACK_BINARY_ENV[name];
  let path = fromEnvironment()[name];
  try {
    path ??= stackBinaries()[name];
  } catch (error) {
    return { reason: `${name} unavailable: ${(error as Error).message} (or set ${envVar})` };
  }
  if (!existsSync(path)) {
    return { reason: `${name} not found at ${path} (${envVar}); build it with scripts/stack-binaries.sh` };
  }
  return { path };
}

/** Under CI a missing binary fails the test; elsewhere the test is skipped with the reason shown. */
export function missingBinaryPolicy(lookup: StackBinaryLookup): 'run' | 'fail' | 'skip' {
  if (lookup.path) return 'run';
  return process.env['CI'] ? 'fail' : 'skip';
}
