/**
 * The tool sandbox: what a tool process may touch, and what this host lets the engine enforce.
 *
 * Every tool starts as `switchyard-sandbox <rules> -- bun --preload tool-guard.ts <script>`: the wrapper (a small Go
 * program, sandbox/main.go, built to build/switchyard-sandbox) restricts itself and then execs bun, which inherits
 * every restriction (Landlock and seccomp cannot be lifted, rlimits only lowered by an unprivileged process):
 *
 * - filesystem (Landlock): read (and execute) only the bun binary, the guard, the tool's own directory, the system
 *   libraries and the few system files Bun reads at start (below); read and write only a private scratch directory
 *   (HOME and TMPDIR point at it; made 0700 per call, removed after) and /dev/null; read its own /proc/<pid>. The
 *   engine's files, store, runtime records, secret files, /run/secrets and every other process's /proc entry fail
 *   with EACCES. (The guard copy and the scratch directories live in one private directory per runtime.)
 * - signals and abstract unix sockets (Landlock scopes, ABI 6): no signal reaches a process outside the tool's own
 *   sandbox (the engine, the spawn helper, another call's tool).
 * - network (Landlock ABI 4), when the definition says `network: false`: no TCP connect or bind (UDP is not covered).
 * - memory: RLIMIT_DATA, from the definition's `memory_mb`. It counts private writable mappings, Bun's own
 *   reservations included, so a tool gets less than the number to allocate (README, Tool processes, has the measures).
 * - processes: with `processes: 1` (the default) a seccomp filter makes fork/vfork/clone-without-CLONE_THREAD fail
 *   (EAGAIN): the tool runs its threads and no other process. A larger number lifts that rule; the count of the
 *   children is then not enforced (that needs a pids cgroup, which an unprivileged container does not get).
 *
 * At start the engine runs `switchyard-sandbox --probe` once and reports what the host enforces (log and
 * GET /api/v1/definitions). Without the wrapper or without Landlock's filesystem rules it enforces nothing that
 * matters: tools are then refused (TOOL_SANDBOX_UNAVAILABLE) unless the operator set SWITCHYARD_TOOL_SANDBOX=off,
 * which runs tools as the engine's user with the engine's rights, as before the sandbox, and says so.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processStartTime } from './process-records.ts';

export const TOOL_SANDBOX_MODES = ['enforce', 'off'] as const;
export type ToolSandboxMode = (typeof TOOL_SANDBOX_MODES)[number];

/** Where .ci/run, the test setup and the Docker build put the wrapper. */
export const DEFAULT_SANDBOX_WRAPPER = fileURLToPath(new URL('../../../build/switchyard-sandbox', import.meta.url));

export const DEFAULT_SANDBOX_MEMORY_MB = 1024;
/** Below this Bun itself does not start under RLIMIT_DATA (measured with Bun 1.4.5: 256 MB aborts at start). */
export const MIN_SANDBOX_MEMORY_MB = 512;
export const DEFAULT_SANDBOX_PROCESSES = 1;

/** One call's limits, from its definition (or the configured defaults). */
export interface ToolLimits {
  readonly memoryMb: number;
  /** 1: the tool cannot start processes; more: it may (not counted). */
  readonly processes: number;
  readonly network: boolean;
}

/** What `switchyard-sandbox --probe` says about this host. */
interface Probe {
  readonly landlock_abi: number;
  readonly landlock_error?: string;
  readonly filesystem: boolean;
  readonly network: boolean;
  readonly signals: boolean;
  readonly abstract_unix_sockets: boolean;
  readonly seccomp: boolean;
  readonly memory: boolean;
}

/** What the sandbox enforces on this host: logged at start, served by GET /api/v1/definitions. */
export interface SandboxReport {
  readonly mode: ToolSandboxMode;
  /** False when tools are refused: nothing that matters can be enforced and the operator did not opt out. */
  readonly runs_tools: boolean;
  readonly wrapper: string | null;
  readonly landlock_abi: number;
  readonly enforced: {
    readonly filesystem: boolean;
    readonly signals: boolean;
    readonly abstract_unix_sockets: boolean;
    /** `network: false` in a definition can be honoured (TCP connect and bind). */
    readonly network: boolean;
    readonly memory: boolean;
    /** `processes: 1` can be honoured (no process creation). */
    readonly processes: boolean;
  };
  /** What is missing, in words; absent when everything is enforced. */
  readonly problem?: string;
}

/** How LocalToolProcesses wraps a tool (JSON: it travels to the spawn helper). */
export interface SandboxHost {
  readonly wrapper: string;
  /** The guard preload, copied into a directory of its own (Bun reads the directory of a preload). */
  readonly guard: string;
  /** Where each call's scratch directory is made (a sibling of the guard's directory, never beneath a read rule). */
  readonly scratchRoot: string;
  /** Read rules: the bun binary (resolved), the guard, the system libraries and files Bun reads. */
  readonly read: readonly string[];
  /** Added to `read` for a tool that may use the network (name resolution, CA certificates). */
  readonly networkRead: readonly string[];
  readonly canDenyNetwork: boolean;
  readonly canDenyProcesses: boolean;
}

/** The wrapper: SWITCHYARD_SANDBOX_WRAPPER, else build/switchyard-sandbox of this checkout. */
export function resolveSandboxWrapper(env: NodeJS.ProcessEnv = process.env): string {
  return env.SWITCHYARD_SANDBOX_WRAPPER || DEFAULT_SANDBOX_WRAPPER;
}

const NOTHING = { filesystem: false, signals: false, abstract_unix_sockets: false, network: false, memory: false, processes: false } as const;

/** Runs the wrapper's probe (once, at start) and says what the sandbox enforces and whether tools may run. */
export function probeSandbox(mode: ToolSandboxMode, wrapper: string): SandboxReport {
  if (mode === 'off') {
    return { mode, runs_tools: true, wrapper: null, landlock_abi: 0, enforced: NOTHING, problem: 'SWITCHYARD_TOOL_SANDBOX=off: tools run unconfined, as the engine\'s user' };
  }
  const refuse = (problem: string): SandboxReport => ({
    mode, runs_tools: false, wrapper: null, landlock_abi: 0, enforced: NOTHING,
    problem: `${problem}; tools are refused (TOOL_SANDBOX_UNAVAILABLE) until it is fixed or SWITCHYARD_TOOL_SANDBOX=off is set`,
  });
  if (!existsSync(wrapper)) return refuse(`the sandbox wrapper ${wrapper} does not exist (build it: scripts/build-sandbox.sh, or set SWITCHYARD_SANDBOX_WRAPPER)`);
  let probe: Probe;
  try {
    probe = JSON.parse(execFileSync(wrapper, ['--probe'], { encoding: 'utf8', timeout: 10_000, env: {}, stdio: ['ignore', 'pipe', 'pipe'] })) as Probe;
  } catch (error) {
    return refuse(`the sandbox wrapper ${wrapper} could not be run: ${(error as Error).message.split('\n')[0]}`);
  }
  if (!probe.filesystem) return refuse(`this kernel does not offer Landlock (${probe.landlock_error ?? 'unavailable'}): a tool could read the engine's files`);
  const enforced = {
    filesystem: true, signals: probe.signals, abstract_unix_sockets: probe.abstract_unix_sockets, network: probe.network,
    memory: probe.memory, processes: probe.seccomp,
  };
  const missing = Object.entries(enforced).filter(([, on]) => !on).map(([name]) => name);
  return {
    mode, runs_tools: true, wrapper, landlock_abi: probe.landlock_abi, enforced,
    ...(missing.length ? { problem: `not enforced on this host (Landlock ABI ${probe.landlock_abi}): ${missing.join(', ')}` } : {}),
  };
}

/** Files Bun reads at start besides its libraries: time zone, CPU count, memory policy. Missing ones are skipped. */
const BUN_SYSTEM_READ = [
  '/lib', '/lib64', '/usr/lib', '/usr/lib64', '/etc/ld.so.cache', '/etc/localtime', '/usr/share/zoneinfo',
  '/sys/devices/system/cpu', '/proc/sys/vm/overcommit_memory', '/sys/kernel/mm/transparent_hugepage/enabled', '/dev/urandom',
];
const NETWORK_READ = ['/etc/resolv.conf', '/etc/hosts', '/etc/nsswitch.conf', '/etc/host.conf', '/etc/gai.conf', '/etc/services', '/etc/ssl', '/etc/ca-certificates', '/usr/share/ca-certificates'];

/**
 * The wrapping of tools on this host, or undefined when tools run unwrapped (sandbox off, or refused). One private
 * directory (0700) per runtime holds `guard/` (Bun reads the directory of its preload: a copy of the guard there
 * rather than the engine's source directory) and `scratch/` (each call's scratch directory); `disposeSandboxHost`
 * removes it.
 */
export function sandboxHost(report: SandboxReport, bunPath: string, guard: string): SandboxHost | undefined {
  if (report.mode === 'off' || !report.runs_tools || report.wrapper === null) return undefined;
  const bun = resolveExecutable(bunPath);
  removeLeftovers();
  // Named after this process (pid and start time), so that the next runtime can tell a killed engine's directory.
  const root = mkdtempSync(join(tmpdir(), `${ROOT_PREFIX}${process.pid}-${processStartTime(process.pid) ?? 0}-`));
  const guardDir = join(root, 'guard');
  const scratchRoot = join(root, 'scratch');
  mkdirSync(guardDir);
  mkdirSync(scratchRoot);
  const guardCopy = join(guardDir, basename(guard));
  copyFileSync(guard, guardCopy);
  return {
    wrapper: report.wrapper, guard: guardCopy, scratchRoot, read: [bun, guardDir, ...BUN_SYSTEM_READ], networkRead: NETWORK_READ,
    canDenyNetwork: report.enforced.network, canDenyProcesses: report.enforced.processes,
  };
}

const ROOT_PREFIX = 'switchyard-tools-';
const ROOT_NAME = /^switchyard-tools-(\d+)-(\d+)-[A-Za-z0-9]+$/;

/** Removes the directories of runtimes whose process is gone (an engine killed before its shutdown removed its own). */
function removeLeftovers(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    const owner = ROOT_NAME.exec(name);
    if (!owner || processStartTime(Number(owner[1])) === owner[2]) continue;
    try {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
    } catch {
      // another user's, or removed meanwhile: not ours to insist on
    }
  }
}

/** Removes what sandboxHost made (scratch directories of calls still running included: call it after shutdown). */
export function disposeSandboxHost(host: SandboxHost | undefined): void {
  if (host) rmSync(dirname(host.scratchRoot), { recursive: true, force: true });
}

/**
 * Why a call cannot be confined as its definition says on this host, or undefined. A tool may read its script's
 * whole directory, so that directory must not be `/` nor hold the engine's working directory (its data, its keys
 * in a development checkout): a tool script at the project's top is refused, not given the engine's files.
 */
export function confinementProblem(host: SandboxHost | undefined, limits: ToolLimits, script: string): string | undefined {
  if (!host) return undefined;
  const toolDir = dirname(script);
  const engineDir = process.cwd();
  if (toolDir === '/' || engineDir === toolDir || engineDir.startsWith(`${toolDir}/`)) {
    return `its script's directory ${toolDir} holds the engine's working directory, which a tool may not read; put the script in a directory of its own`;
  }
  if (!limits.network && !host.canDenyNetwork) return 'its definition denies network access, which this kernel cannot enforce (Landlock ABI 4 needed)';
  if (limits.processes <= 1 && !host.canDenyProcesses) return 'its definition allows no child process, which this host cannot enforce (no seccomp filter for this architecture)';
  return undefined;
}

/** The wrapper's argv (after its own path) for one call: rules, limits, then `-- bun ...`. */
export function sandboxArgs(host: SandboxHost, limits: ToolLimits, toolDir: string, scratch: string, command: readonly string[]): string[] {
  const args: string[] = [];
  for (const path of [...host.read, ...(limits.network ? host.networkRead : []), toolDir]) args.push('--read', path);
  args.push('--write', scratch, '--write', '/dev/null');
  if (!limits.network) args.push('--no-network');
  if (limits.processes <= 1) args.push('--no-fork');
  args.push('--memory', String(limits.memoryMb * 1024 * 1024), '--', ...command);
  return args;
}

/** A command's real file: PATH lookup for a bare name, symlinks resolved (Landlock rules apply to the file itself). */
function resolveExecutable(command: string): string {
  let path = command;
  if (!command.includes('/')) {
    for (const dir of (process.env.PATH ?? '').split(':')) {
      if (dir && existsSync(`${dir}/${command}`)) {
        path = `${dir}/${command}`;
        break;
      }
    }
  }
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}
