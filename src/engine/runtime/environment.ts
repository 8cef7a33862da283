/**
 * What a tool process may see of the engine's environment, and which Bun runs it.
 *
 * A tool gets PATH, HOME, LANG, TZ from the runtime's base environment, plus the names its definition
 * allowlists, plus TRACEPARENT/TRACESTATE of its `runtime.execute_tool` span (so its own spans join the
 * trace), plus SWITCHYARD_TOOL_FAULTS=1 when the operator enabled the sample tools' fault injection. Nothing
 * else of the engine's environment reaches it. An allowlist may not name a variable that makes a loader, a
 * runtime or libc run code (LD_*, DYLD_*, NODE_*, BUN_*, GLIBC_TUNABLES, GCONV_PATH, ...) or one the runtime
 * manages itself: the definition loader refuses such names at start, the runtime again for definitions
 * built elsewhere.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { isSpanContextValid, type SpanContext } from '@opentelemetry/api';

export const ALWAYS_PASSED_ENV = ['PATH', 'HOME', 'LANG', 'TZ'] as const;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Variables that make a loader, runtime or libc run code or change trust; TRACE* and the fault switch are set by the runtime. */
const FORBIDDEN_ENV = /^(LD_|DYLD_|NODE_|BUN_|MALLOC_|GLIBC_TUNABLES$|GCONV_PATH$|LOCPATH$|HOSTALIASES$|RES_OPTIONS$|JAVA_TOOL_OPTIONS$|_JAVA_OPTIONS$|PYTHONPATH$|PYTHONSTARTUP$|PERL5OPT$|PERL5LIB$|RUBYOPT$|TRACEPARENT$|TRACESTATE$|SWITCHYARD_TOOL_FAULTS$)/;

/**
 * Why a name may not be on a tool's env allowlist, or undefined when it may. The definition loader
 * refuses such names at start; the runtime refuses them again for definitions built elsewhere.
 */
export function envAllowlistProblem(name: string): string | undefined {
  if (!ENV_NAME.test(name)) return `${JSON.stringify(name)} is not a variable name`;
  if (FORBIDDEN_ENV.test(name)) return `${name} can inject code into the tool process (a loader, runtime or libc variable) or is managed by the runtime; remove it`;
  return undefined;
}

/** The values of `names` that are set in `source`. */
export function pickEnv(source: NodeJS.ProcessEnv, names: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of names) {
    const value = source[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/**
 * The static part of a tool's environment (the same for every call of the definition), or the problem
 * that refuses its allowlist.
 */
export function toolEnvironment(allowlist: readonly string[], baseEnv: NodeJS.ProcessEnv, toolFaults: boolean): { env: Record<string, string>; problem?: string } {
  const env = pickEnv(baseEnv, ALWAYS_PASSED_ENV);
  for (const name of allowlist) {
    const problem = envAllowlistProblem(name);
    if (problem) return { env, problem: `env allowlist: ${problem}` };
    const value = baseEnv[name];
    if (value !== undefined) env[name] = value;
  }
  if (toolFaults) env.SWITCHYARD_TOOL_FAULTS = '1';
  return { env };
}

/** The environment of one call: the tool's own plus the W3C trace context of the call's span, when it has one. */
export function withTraceContext(env: Record<string, string>, context: SpanContext): Record<string, string> {
  if (!isSpanContextValid(context)) return env;
  const withTrace: Record<string, string> = { ...env, TRACEPARENT: `00-${context.traceId}-${context.spanId}-${context.traceFlags & 1 ? '01' : '00'}` };
  const traceState = context.traceState?.serialize();
  if (traceState) withTrace.TRACESTATE = traceState;
  return withTrace;
}

/** Resolves the bun binary: env SWITCHYARD_BUN, then the platform package from npm `bun`, then PATH. */
export function resolveBunPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SWITCHYARD_BUN) return env.SWITCHYARD_BUN;
  const arch = process.arch === 'arm64' ? 'aarch64' : process.arch;
  const require = createRequire(import.meta.url);
  for (const suffix of ['', '-baseline', '-musl', '-musl-baseline']) {
    try {
      const pkg = require.resolve(`@oven/bun-${process.platform}-${arch}${suffix}/package.json`);
      const bin = join(dirname(pkg), 'bin', 'bun');
      if (existsSync(bin)) return bin;
    } catch {
      // not installed: try the next variant
    }
  }
  return 'bun';
}
