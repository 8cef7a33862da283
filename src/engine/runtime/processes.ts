/**
 * The life of a tool process: spawn, pipes, caps, timeout, process-group kill, the parent-death guard and the
 * process records. It knows nothing of tools' definitions, the protocol's meaning or telemetry: it runs a
 * script with a request on stdin and reports what happened (ProcessRun), which outcome.ts classifies.
 *
 * `ToolProcesses` is the whole interface the runtime uses. Two implementations: `HelperToolProcesses`
 * (helper-processes.ts, the default) has a small long-lived spawn helper process start the tools, so that the
 * engine's event loop never forks the engine; the helper runs a `LocalToolProcesses`, which spawns the tools as
 * children of the process it lives in (the engine itself when used directly, SWITCHYARD_TOOL_PROCESSES=local):
 *
 * - `bun --preload tool-guard.ts <script>`, detached (its own session and process group), cwd the script's
 *   directory, the given environment only; stdio 0-2 are pipes, fd 3 is the link the guard watches (one end
 *   of a socket pair this process, the spawn helper or the engine, holds until the tool has exited: the guard
 *   kills the group when it closes early, i.e. when this process died).
 * - The request goes to stdin, which is then closed. stdout is kept up to `outputLimit` (the group is
 *   terminated beyond); stderr is kept up to `stderrLimit`, the rest counted and dropped.
 * - On timeout, cancellation (AbortSignal), output overflow or shutdown the whole group gets SIGTERM, then
 *   SIGKILL after `killGraceMs`. Whenever the tool itself exits, the group gets SIGKILL, so children the tool
 *   left behind die with it (a child that calls setsid() escapes its group: that needs cgroups).
 * - With `recordsDir`, every tool process is recorded while it lives (process-records.ts), and the tool
 *   processes earlier engines left there are killed when this object is made. (In the helper there is none:
 *   the engine keeps the records.)
 * - `killAll()` SIGKILLs every live group at once: what the helper does when its engine is gone.
 * - With `sandbox` (sandbox.ts), the command is `switchyard-sandbox <rules> -- bun --preload ...`: the wrapper confines
 *   itself and execs bun under the same pid. Each call gets a private scratch directory (0700, HOME and TMPDIR),
 *   removed once the call is over.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rm } from 'node:fs';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProcessRecords, type RuntimeLogger } from './process-records.ts';
import { DEFAULT_SANDBOX_PROCESSES, DEFAULT_SANDBOX_MEMORY_MB, sandboxArgs, type SandboxHost, type ToolLimits } from './sandbox.ts';

/** Bun's preload that kills the tool's group when the engine dies. */
export const TOOL_GUARD = fileURLToPath(new URL('./tool-guard.ts', import.meta.url));

export interface ProcessSpec {
  /** Absolute path of the script bun runs; its directory is the working directory. */
  readonly script: string;
  readonly env: Record<string, string>;
  /** Written to stdin, which is then closed. */
  readonly stdin: string | Uint8Array;
  readonly timeoutMs: number;
  /** Aborting terminates the process group (reason `canceled`). */
  readonly signal?: AbortSignal;
  /** Names the process in its record and in logs: the tool id. */
  readonly label: string;
  /** Called once the process exists (before its request is written), with its pid, which is its process group id. */
  readonly onStarted?: (pid: number) => void;
  /** The call's sandbox limits (used when the processes run sandboxed); the defaults when absent. */
  readonly limits?: ToolLimits;
}

/** How the sandbox wrapper says it failed before bun ran (sandbox/main.go). */
const SANDBOX_FAILED_EXIT = 126;
const SANDBOX_FAILED_PREFIX = 'switchyard-sandbox: ';

const DEFAULT_LIMITS: ToolLimits = { memoryMb: DEFAULT_SANDBOX_MEMORY_MB, processes: DEFAULT_SANDBOX_PROCESSES, network: true };

export type TerminateReason = 'timeout' | 'output_limit' | 'canceled' | 'shutdown';

/** What happened to one tool process. */
export interface ProcessRun {
  /** Process id (and process group id); null when it never started. */
  readonly pid: number | null;
  /** Why the runtime terminated the group, if it did (the first reason). */
  readonly terminated: TerminateReason | null;
  /** stdout went over the cap (possibly after the process exited, while draining the pipe). */
  readonly overflow: boolean;
  readonly spawnError: Error | null;
  /**
   * The process was lost: what ran it (the spawn helper) died before reporting how it ended. Its process group
   * has been killed; exit code, signal and output are unknown.
   */
  readonly lost: Error | null;
  readonly stdoutError: Error | null;
  readonly stderrError: Error | null;
  /** The request was not delivered whole (EPIPE, or still buffered when the process went away). */
  readonly stdinFailed: boolean;
  readonly exitCode: number | null;
  readonly signal: string | null;
  /** What the tool wrote to stdout (empty after an overflow) and how many bytes that was in all. */
  readonly stdout: Buffer;
  readonly stdoutBytes: number;
  /** The first `stderrLimit` bytes of stderr, and how many the tool wrote in all. */
  readonly stderr: Buffer;
  readonly stderrBytes: number;
}

/** Where tool processes run. */
export interface ToolProcesses {
  /** Readies the machinery ahead of the first call (starts the spawn helper); `run` does it when needed. */
  start(): void;
  /** Runs one tool process to its end. Never rejects: a failure to spawn is a ProcessRun with `spawnError`. */
  run(spec: ProcessSpec): Promise<ProcessRun>;
  /** Processes started and not yet fully reaped. */
  readonly live: number;
  /** Terminates every live process group (reason `shutdown`) and resolves once all are reaped. */
  shutdown(): Promise<void>;
}

export interface LocalToolProcessesOptions {
  readonly bunPath: string;
  readonly outputLimit: number;
  readonly stderrLimit: number;
  /** Between SIGTERM and SIGKILL. */
  readonly killGraceMs: number;
  /** After the tool exits, how long to wait for its pipes to close (an escaped grandchild may hold them). */
  readonly closeGraceMs: number;
  /** Where live tool processes are recorded (see process-records.ts); none when absent. */
  readonly recordsDir?: string;
  readonly logger?: RuntimeLogger;
  /** Run every tool through the sandbox wrapper (sandbox.ts); unconfined when absent. */
  readonly sandbox?: SandboxHost;
}

/** Tool processes as children of this process. */
export class LocalToolProcesses implements ToolProcesses {
  readonly #o: LocalToolProcessesOptions;
  readonly #records: ProcessRecords | undefined;
  readonly #live = new Set<ToolProcess>();

  constructor(options: LocalToolProcessesOptions) {
    this.#o = options;
    // First thing: kill what earlier engines left in the directory.
    this.#records = options.recordsDir === undefined ? undefined : ProcessRecords.open(options.recordsDir, options.logger);
  }

  get live(): number {
    return this.#live.size;
  }

  start(): void {
    // Nothing to start: each call spawns its tool.
  }

  run(spec: ProcessSpec): Promise<ProcessRun> {
    const run = new ToolProcess(this.#o, spec, this.#records, (done) => this.#live.delete(done));
    this.#live.add(run);
    run.start();
    return run.done;
  }

  async shutdown(): Promise<void> {
    const done: Promise<ProcessRun>[] = [];
    for (const run of this.#live) {
      run.terminate('shutdown');
      done.push(run.done);
    }
    await Promise.all(done);
    this.#records?.close();
  }

  /** SIGKILLs every live process group at once, no grace (the spawn helper does it when its engine is gone). */
  killAll(): void {
    for (const run of this.#live) run.killNow();
  }
}

/** One spawned tool: event-driven, no polling; resolves `done` exactly once. */
class ToolProcess {
  readonly done: Promise<ProcessRun>;
  readonly #o: LocalToolProcessesOptions;
  readonly #spec: ProcessSpec;
  readonly #records: ProcessRecords | undefined;
  readonly #onDone: (run: ToolProcess) => void;
  #resolve!: (run: ProcessRun) => void;
  #child: ChildProcess | undefined;
  #pid: number | null = null;
  #recorded = false;
  #stdout: Buffer[] = [];
  #stdoutBytes = 0;
  #stderr: Buffer[] = [];
  #stderrKept = 0;
  #stderrBytes = 0;
  #terminated: TerminateReason | null = null;
  #spawnError: Error | null = null;
  #stdoutError: Error | null = null;
  #stderrError: Error | null = null;
  #stdinError = false;
  #overflow = false;
  #exitCode: number | null = null;
  #signal: string | null = null;
  #exited = false;
  #finished = false;
  #timeoutTimer: NodeJS.Timeout | undefined;
  #graceTimer: NodeJS.Timeout | undefined;
  #closeTimer: NodeJS.Timeout | undefined;
  #scratch: string | undefined;
  readonly #onAbort = (): void => this.terminate('canceled');

  constructor(options: LocalToolProcessesOptions, spec: ProcessSpec, records: ProcessRecords | undefined, onDone: (run: ToolProcess) => void) {
    this.#o = options;
    this.#spec = spec;
    this.#records = records;
    this.#onDone = onDone;
    this.done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  start(): void {
    const spec = this.#spec;
    let child: ChildProcess;
    try {
      const sandbox = this.#o.sandbox;
      const command = [this.#o.bunPath, '--preload', sandbox?.guard ?? TOOL_GUARD, spec.script];
      let env = spec.env;
      if (sandbox) {
        // mkdtemp makes it 0700; the tool's Landlock rules name it alone of all scratch directories.
        this.#scratch = mkdtempSync(join(sandbox.scratchRoot, 'call-'));
        env = { ...env, HOME: this.#scratch, TMPDIR: this.#scratch };
        const args = sandboxArgs(sandbox, spec.limits ?? DEFAULT_LIMITS, dirname(spec.script), this.#scratch, command);
        child = spawn(sandbox.wrapper, args, { cwd: dirname(spec.script), env, detached: true, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
      } else {
        child = spawn(command[0]!, command.slice(1), { cwd: dirname(spec.script), env, detached: true, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
      }
    } catch (error) {
      this.#spawnError = error instanceof Error ? error : new Error(String(error));
      this.#finish();
      return;
    }
    this.#child = child;
    this.#pid = child.pid ?? null;
    child.once('error', (error) => this.#onError(error));
    child.once('exit', (code, signal) => this.#onExit(code, signal));
    child.once('close', () => this.#finish());
    // Listeners stay attached after finishing: a late stream error must never become an uncaught exception.
    child.stdin!.on('error', () => {
      this.#stdinError = true;
    });
    child.stdout!.on('error', (error) => {
      this.#stdoutError ??= error;
    });
    child.stderr!.on('error', (error) => {
      this.#stderrError ??= error;
    });
    child.stdout!.on('data', (chunk: Buffer) => this.#onStdout(chunk));
    child.stderr!.on('data', (chunk: Buffer) => this.#onStderr(chunk));
    // The engine link: held open, read (and dropped) so that it closes when the tool's end does.
    const link = child.stdio[3] as Socket | null;
    link?.on('error', () => {});
    link?.resume();
    if (this.#pid === null) return; // spawn failed: 'error' follows on the next tick
    this.#record();
    spec.onStarted?.(this.#pid);
    child.stdin!.end(spec.stdin);
    this.#timeoutTimer = setTimeout(() => this.terminate('timeout'), spec.timeoutMs);
    spec.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** SIGTERM to the group now, SIGKILL after the grace period. The first reason sticks. */
  terminate(reason: TerminateReason): void {
    if (this.#finished || this.#terminated || this.#exited || this.#pid === null) return;
    this.#terminated = reason;
    clearTimeout(this.#timeoutTimer);
    this.#killGroup('SIGTERM');
    this.#graceTimer = setTimeout(() => this.#killGroup('SIGKILL'), this.#o.killGraceMs);
  }

  /** SIGKILL to the group now. */
  killNow(): void {
    if (!this.#finished && !this.#exited) this.#killGroup('SIGKILL');
  }

  #record(): void {
    if (!this.#records) return;
    try {
      this.#recorded = this.#records.add(this.#pid!, this.#spec.label) !== undefined;
    } catch (error) {
      // A full or read-only disk must not fail the call: the guard still stands.
      this.#o.logger?.warn({ err: error, pid: this.#pid, tool_id: this.#spec.label }, 'could not record a tool process; if the engine is killed and the guard cannot act, the next engine will not find it');
    }
  }

  #forget(): void {
    if (!this.#recorded) return;
    this.#recorded = false;
    this.#records!.remove(this.#pid!);
  }

  #onStdout(chunk: Buffer): void {
    this.#stdoutBytes += chunk.length;
    if (this.#overflow) return; // keep draining so the writer is not stuck on a full pipe; drop it
    if (this.#stdoutBytes > this.#o.outputLimit) {
      this.#overflow = true;
      this.#stdout = [];
      this.terminate('output_limit');
      return;
    }
    this.#stdout.push(chunk);
  }

  #onStderr(chunk: Buffer): void {
    this.#stderrBytes += chunk.length;
    const room = this.#o.stderrLimit - this.#stderrKept;
    if (room <= 0) return;
    const kept = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.#stderr.push(kept);
    this.#stderrKept += kept.length;
  }

  #onError(error: Error): void {
    if (this.#pid === null) {
      // spawn failed (ENOENT, EACCES, EMFILE): there is no process and 'exit' will not come.
      this.#spawnError = error;
      this.#finish();
    }
    // Otherwise a failed kill(): the process is already gone, 'exit'/'close' carry on.
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.#exited = true;
    this.#exitCode = code;
    this.#signal = signal;
    clearTimeout(this.#timeoutTimer);
    clearTimeout(this.#graceTimer);
    // Whatever the tool left running in its group dies with it (and releases the pipes it inherited).
    this.#killGroup('SIGKILL');
    this.#forget();
    // A process that escaped the group could hold the pipes open forever: stop waiting for 'close' then.
    this.#closeTimer = setTimeout(() => this.#finish(), this.#o.closeGraceMs);
  }

  #killGroup(signal: NodeJS.Signals): void {
    const pid = this.#pid;
    if (pid === null) return;
    try {
      process.kill(-pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH' && !this.#exited) {
        try {
          this.#child?.kill(signal);
        } catch {
          // nothing more to do
        }
      }
    }
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    clearTimeout(this.#timeoutTimer);
    clearTimeout(this.#graceTimer);
    clearTimeout(this.#closeTimer);
    this.#spec.signal?.removeEventListener('abort', this.#onAbort);
    this.#forget();
    // Off the event loop; the group is dead (or escaped, and then it loses its files).
    if (this.#scratch !== undefined) rm(this.#scratch, { recursive: true, force: true, maxRetries: 2 }, () => {});
    const child = this.#child;
    let stdinFailed = this.#stdinError;
    if (child) {
      // Still buffered when the process is gone: the tool never read its whole request.
      if (child.stdin && !child.stdin.writableFinished) stdinFailed = true;
      for (const stream of child.stdio) stream?.destroy();
    }
    const stdout = this.#stdout.length === 1 ? this.#stdout[0]! : Buffer.concat(this.#stdout);
    const stderr = this.#stderr.length === 1 ? this.#stderr[0]! : Buffer.concat(this.#stderr);
    this.#stdout = [];
    this.#stderr = [];
    this.#onDone(this);
    if (this.#o.sandbox && this.#exitCode === SANDBOX_FAILED_EXIT && stderr.subarray(0, SANDBOX_FAILED_PREFIX.length).toString() === SANDBOX_FAILED_PREFIX) {
      // The wrapper could not confine itself or exec bun: the tool never started.
      this.#resolve({
        pid: null, terminated: null, overflow: false, spawnError: new Error(stderr.toString('utf8').trim()), lost: null, stdoutError: null, stderrError: null,
        stdinFailed: false, exitCode: null, signal: null, stdout: Buffer.alloc(0), stdoutBytes: 0, stderr: Buffer.alloc(0), stderrBytes: 0,
      });
      return;
    }
    this.#resolve({
      pid: this.#pid, terminated: this.#terminated, overflow: this.#overflow, spawnError: this.#spawnError, lost: null, stdoutError: this.#stdoutError,
      stderrError: this.#stderrError, stdinFailed, exitCode: this.#exitCode, signal: this.#signal, stdout, stdoutBytes: this.#stdoutBytes,
      stderr, stderrBytes: this.#stderrBytes,
    });
  }
}
