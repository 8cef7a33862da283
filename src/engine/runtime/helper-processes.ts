/**
 * Tool processes started by a spawn helper (spawn-helper.ts), the engine's default `ToolProcesses`.
 *
 * Why: libuv spawns with fork() on Linux, which copies the forking process's page tables on its event loop:
 * `spawn()` from the engine blocks it for about 1.5 ms at 80 MiB of RSS and 15 ms at 480 MiB (BENCHMARKS.md).
 * So the engine starts one small Node process, once, and asks it to start each tool; the engine's event loop
 * only writes a request frame and reads back two (spawn-protocol.ts). What the tool gets is unchanged: the helper
 * runs the same LocalToolProcesses (process group, guard, timeout, caps, group kill, the environment the runtime
 * computed, TRACEPARENT included).
 *
 * - The helper is started by `start()` or the first call, detached (a process group of its own), with PATH as
 *   its only environment. Starting it forks the engine once; a restart does it again.
 * - Cancellation (the call's AbortSignal) becomes a `cancel` frame; `shutdown()` a `shutdown` frame, then the
 *   link is closed and the helper exits.
 * - Records (process-records.ts) stay the engine's: the helper reports each tool's pid and start time
 *   (`started`) and the engine records it (the file written by the thread pool, not on the event loop), and
 *   records the helper itself, so an engine that starts after a killed one kills a leftover helper and leftover
 *   tools alike.
 * - When the helper dies (or is killed: it is SIGKILLed when a call's answer is overdue by `helperWatchdogMs`
 *   past its timeout and grace periods, or when it breaks the protocol), every call in flight on it ends at once
 *   with `lost` (kind wait, TOOL_HELPER_DIED; `spawnError`, kind start, when the helper had not reported its
 *   tool's pid yet), never hangs; the engine SIGKILLs those tools' process groups itself (a pid whose start time
 *   changed is spared), on top of each tool's guard, which watches the helper's end of fd 3 (and alone covers a
 *   tool whose pid never reached the engine). A new helper starts at once (or, if the dead one never answered,
 *   at the next call, so that a helper that cannot start does not loop).
 * - When the engine dies, the helper reads end-of-file on its link, SIGKILLs every tool group (stopped ones
 *   included) and exits; the guards would also see the helper go.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ProcessRecords, processStartTime } from './process-records.ts';
import type { LocalToolProcessesOptions, ProcessRun, ProcessSpec, TerminateReason, ToolProcesses } from './processes.ts';
import { decodeDone, encodeFrame, encodeRun, FRAME, FrameReader, writeFrame, type DoneHeader, type StartedHeader } from './spawn-protocol.ts';

/** The helper's script. */
export const SPAWN_HELPER = fileURLToPath(new URL('./spawn-helper.ts', import.meta.url));
/** The helper's name in the process records. */
export const SPAWN_HELPER_LABEL = 'spawn-helper';

export interface HelperToolProcessesOptions extends LocalToolProcessesOptions {
  /** What runs the helper script; default this process's Node (process.execPath). */
  readonly helperRuntime?: string;
  /**
   * How long past a call's timeout, kill grace and close grace the engine waits for its answer before it takes
   * the helper for hung and SIGKILLs it (failing its calls); default 5000 ms. Also bounds `shutdown()`.
   */
  readonly helperWatchdogMs?: number;
}

export const DEFAULT_HELPER_WATCHDOG_MS = 5_000;
const MAX_CALL_ID = 0xffff_ffff;
const MAX_HELPER_STDERR = 8 * 1024;

/** One life of the helper process. */
interface Helper {
  readonly child: ChildProcess;
  readonly link: Socket;
  readonly pid: number | null;
  readonly calls: Set<Call>;
  readonly gone: Promise<void>;
  markGone(): void;
  startTime: string | undefined;
  startError: Error | undefined;
  exited: { code: number | null; signal: string | null } | undefined;
  linkClosed: boolean;
  /** Why the engine killed it, if it did. */
  killedBecause: string | undefined;
  /** Shut down on purpose: no warning. */
  closing: boolean;
  finished: boolean;
  /** It has sent a frame: it did start (a helper that dies before is not restarted at once, or it would loop). */
  answered: boolean;
  /** The start of what it wrote to stderr. */
  stderr: string;
  stderrClosed: boolean;
}

interface Call {
  readonly id: number;
  readonly spec: ProcessSpec;
  readonly helper: Helper;
  readonly resolve: (run: ProcessRun) => void;
  readonly done: Promise<ProcessRun>;
  pid: number | null;
  startTime: string | undefined;
  recorded: boolean;
  /** Why the engine asked for the group to be terminated (canceled, shutdown). */
  requested: TerminateReason | null;
  watchdog: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
}

export class HelperToolProcesses implements ToolProcesses {
  readonly #o: HelperToolProcessesOptions;
  readonly #records: ProcessRecords | undefined;
  readonly #calls = new Map<number, Call>();
  readonly #watchdogMs: number;
  #helper: Helper | undefined;
  #lastId = 0;

  constructor(options: HelperToolProcessesOptions) {
    this.#o = options;
    this.#watchdogMs = options.helperWatchdogMs ?? DEFAULT_HELPER_WATCHDOG_MS;
    // First thing: kill what earlier engines (and their helpers) left in the directory.
    this.#records = options.recordsDir === undefined ? undefined : ProcessRecords.open(options.recordsDir, options.logger);
  }

  get live(): number {
    return this.#calls.size;
  }

  /** The live helper's pid, if one runs. */
  get helperPid(): number | null {
    const helper = this.#helper;
    return helper && !helper.finished ? helper.pid : null;
  }

  start(): void {
    try {
      this.#ensureHelper();
    } catch {
      // Reported by the first call.
    }
  }

  run(spec: ProcessSpec): Promise<ProcessRun> {
    let helper: Helper;
    try {
      helper = this.#ensureHelper();
    } catch (error) {
      return Promise.resolve(notRun(null, { spawnError: new Error(`could not start the tool spawn helper: ${(error as Error).message}`) }));
    }
    this.#lastId = this.#lastId >= MAX_CALL_ID ? 1 : this.#lastId + 1;
    let resolve!: (run: ProcessRun) => void;
    const done = new Promise<ProcessRun>((r) => {
      resolve = r;
    });
    const call: Call = {
      id: this.#lastId, spec, helper, resolve, done, pid: null, startTime: undefined, recorded: false, requested: null, watchdog: undefined, onAbort: undefined,
    };
    this.#calls.set(call.id, call);
    helper.calls.add(call);
    if (helper.calls.size === 1) holdOpen(helper, true);
    call.watchdog = setTimeout(() => this.#overdue(call), spec.timeoutMs + this.#o.killGraceMs + this.#o.closeGraceMs + this.#watchdogMs);
    call.watchdog.unref();
    writeFrame(helper.link, encodeRun(call.id, spec));
    if (spec.signal) {
      call.onAbort = () => this.#cancel(call);
      if (spec.signal.aborted) call.onAbort();
      else spec.signal.addEventListener('abort', call.onAbort, { once: true });
    }
    return done;
  }

  async shutdown(): Promise<void> {
    const helper = this.#helper;
    if (helper && !helper.finished) {
      helper.closing = true;
      for (const call of helper.calls) call.requested ??= 'shutdown';
      writeFrame(helper.link, encodeFrame(FRAME.shutdown, 0, null));
      // Bounded: a helper that does not finish its calls in time is killed (its calls then end as lost).
      const bound = setTimeout(() => this.#kill(helper, 'did not finish its calls at shutdown and was killed'), this.#o.killGraceMs + this.#o.closeGraceMs + this.#watchdogMs);
      await Promise.all([...helper.calls].map((call) => call.done));
      helper.link.end();
      await helper.gone;
      clearTimeout(bound);
    }
    await this.#records?.settled();
    this.#records?.close();
  }

  #ensureHelper(): Helper {
    const current = this.#helper;
    if (current && !current.finished && !current.linkClosed && current.exited === undefined && !current.link.destroyed) return current;
    const o = this.#o;
    const options: LocalToolProcessesOptions = {
      bunPath: o.bunPath, outputLimit: o.outputLimit, stderrLimit: o.stderrLimit, killGraceMs: o.killGraceMs, closeGraceMs: o.closeGraceMs,
      sandbox: o.sandbox,
    };
    const child = spawn(o.helperRuntime ?? process.execPath, [SPAWN_HELPER, JSON.stringify(options)], {
      // Not the engine's stderr: a helper that outlives the engine (stopped) would hold the engine's pipe open.
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'], detached: true, env: { PATH: process.env.PATH ?? '' },
    });
    const link = child.stdio[3] as Socket;
    const stderr = child.stderr as Socket;
    let markGone!: () => void;
    const helper: Helper = {
      child, link, pid: child.pid ?? null, calls: new Set(), gone: new Promise((r) => (markGone = r)), markGone,
      startTime: undefined, startError: undefined, exited: undefined, linkClosed: false, killedBecause: undefined, closing: false, finished: false, answered: false,
      stderr: '', stderrClosed: false,
    };
    this.#helper = helper;
    holdOpen(helper, false);
    // What it says on stderr (a crash's stack, say) goes into the warning about its death.
    stderr.on('data', (chunk: Buffer) => {
      if (helper.stderr.length < MAX_HELPER_STDERR) helper.stderr += chunk.toString('utf8', 0, MAX_HELPER_STDERR - helper.stderr.length);
    });
    stderr.on('error', () => {});
    stderr.on('close', () => {
      helper.stderrClosed = true;
      this.#maybeGone(helper);
    });
    if (helper.pid !== null && this.#records) {
      try {
        helper.startTime = this.#records.add(helper.pid, SPAWN_HELPER_LABEL);
      } catch (error) {
        o.logger?.warn({ err: error, pid: helper.pid }, 'could not record the tool spawn helper; if the engine is killed while the helper is stopped, the next engine will not find it');
      }
    }
    const reader = new FrameReader((type, id, header, body) => this.#onFrame(helper, type, id, header, body));
    link.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (error) {
        o.logger?.warn({ err: error, pid: helper.pid }, 'the tool spawn helper broke the protocol; killing it');
        this.#kill(helper, `broke the protocol (${(error as Error).message}) and was killed`);
      }
    });
    link.on('error', () => {
      // 'close' follows
    });
    link.on('close', () => {
      helper.linkClosed = true;
      // Without its link the helper is of no use (and would not notice the engine's death): make sure it ends.
      if (helper.exited === undefined && helper.pid !== null) this.#kill(helper, helper.killedBecause);
      this.#maybeGone(helper);
    });
    child.on('exit', (code, signal) => {
      helper.exited = { code, signal };
      // What it wrote before dying is still read; pipes held open by something else are cut after a moment.
      if (!helper.linkClosed || !helper.stderrClosed) {
        setTimeout(() => {
          link.destroy();
          stderr.destroy();
        }, 1_000).unref();
      }
      this.#maybeGone(helper);
    });
    child.on('error', (error) => {
      if (helper.pid !== null) return; // a failed kill() of a process already gone
      helper.startError = error;
      helper.exited = { code: null, signal: null };
      link.destroy();
      stderr.destroy();
      this.#maybeGone(helper);
    });
    return helper;
  }

  #onFrame(helper: Helper, type: number, id: number, header: unknown, body: Buffer): void {
    helper.answered = true;
    const call = this.#calls.get(id);
    if (!call) return; // ended meanwhile (its helper was declared gone)
    if (type === FRAME.started) {
      const { pid, startTime } = header as StartedHeader;
      call.pid = pid;
      call.startTime = startTime ?? undefined;
      if (this.#records && startTime !== null) {
        // Written by the thread pool: the event loop only hands it over.
        this.#records.addInBackground(pid, call.spec.label, startTime, (error) => {
          // A full or read-only disk must not fail the call: the guard and the helper still stand.
          this.#o.logger?.warn({ err: error, pid, tool_id: call.spec.label }, 'could not record a tool process; if the engine is killed and neither the helper nor the guard can act, the next engine will not find it');
        });
        call.recorded = true;
      }
      call.spec.onStarted?.(pid);
    } else if (type === FRAME.done) {
      this.#finish(call, decodeDone(header as DoneHeader, body));
    }
  }

  #cancel(call: Call): void {
    if (call.requested || !this.#calls.has(call.id)) return;
    call.requested = 'canceled';
    writeFrame(call.helper.link, encodeFrame(FRAME.cancel, call.id, null));
  }

  #overdue(call: Call): void {
    if (!this.#calls.has(call.id)) return;
    this.#o.logger?.warn({ pid: call.helper.pid, tool_id: call.spec.label, tool_pid: call.pid },
      `the tool spawn helper has not reported how tool ${call.spec.label} ended, ${this.#watchdogMs} ms after its timeout and grace periods; killing the helper`);
    this.#kill(call.helper, 'stopped answering and was killed');
  }

  #kill(helper: Helper, because: string | undefined): void {
    if (helper.exited !== undefined || helper.pid === null) return;
    helper.killedBecause ??= because;
    try {
      process.kill(helper.pid, 'SIGKILL');
    } catch {
      // already gone: 'exit' follows
    }
  }

  /** Once the helper has exited and its pipes are closed: every call still on it ends as lost. */
  #maybeGone(helper: Helper): void {
    if (helper.finished || !helper.linkClosed || !helper.stderrClosed || helper.exited === undefined) return;
    helper.finished = true;
    if (this.#helper === helper) this.#helper = undefined;
    if (helper.pid !== null && helper.startTime !== undefined) this.#records?.remove(helper.pid);
    const why = helper.startError ? `could not be started (${helper.startError.message})`
      : helper.killedBecause ?? (helper.exited.signal ? `died (killed by ${helper.exited.signal})` : `exited with code ${helper.exited.code}`);
    const lost = [...helper.calls];
    if (lost.length || !helper.closing) {
      this.#o.logger?.warn({ pid: helper.pid, exit_code: helper.exited.code, signal: helper.exited.signal, calls_lost: lost.length, stderr: helper.stderr || undefined },
        `the tool spawn helper (pid ${helper.pid}) ${why}; ${lost.length} tool call(s) in flight failed and their process groups were killed; `
        + (helper.answered ? 'a new helper starts now' : 'the next call starts a new helper'));
    }
    for (const call of lost) {
      this.#killToolGroup(call);
      this.#finish(call, call.pid === null
        ? notRun(null, { spawnError: new Error(`the tool spawn helper (pid ${helper.pid}) ${why} before it reported starting the tool`), terminated: call.requested })
        : notRun(call.pid, { lost: new Error(`the tool spawn helper (pid ${helper.pid}) ${why} while the tool ran; its process group was killed`), terminated: call.requested }));
    }
    helper.markGone();
    // A helper that worked is replaced at once, so the next call does not wait for a start.
    if (!helper.closing && helper.answered && this.#helper === undefined) this.start();
  }

  /** SIGKILLs a lost call's process group, unless its pid now names another process. */
  #killToolGroup(call: Call): void {
    const pid = call.pid;
    if (pid === null || call.startTime === undefined || processStartTime(pid) !== call.startTime) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }

  #finish(call: Call, run: ProcessRun): void {
    if (!this.#calls.delete(call.id)) return;
    clearTimeout(call.watchdog);
    if (call.onAbort) call.spec.signal?.removeEventListener('abort', call.onAbort);
    if (call.recorded) this.#records?.removeInBackground(call.pid!);
    const helper = call.helper;
    helper.calls.delete(call);
    if (helper.calls.size === 0) holdOpen(helper, false);
    call.resolve(run);
  }
}

/**
 * While calls are in flight the helper keeps this process alive (as a tool's pipes do when the engine spawns),
 * so that each call ends, even as lost; idle, it does not.
 */
function holdOpen(helper: Helper, hold: boolean): void {
  for (const handle of [helper.child, helper.link, helper.child.stderr as Socket]) {
    if (hold) handle.ref();
    else handle.unref();
  }
}

/** A run that reports no process outcome: never started, or lost. */
function notRun(pid: number | null, facts: Partial<Pick<ProcessRun, 'spawnError' | 'lost' | 'terminated'>>): ProcessRun {
  return {
    pid, terminated: facts.terminated ?? null, overflow: false, spawnError: facts.spawnError ?? null, lost: facts.lost ?? null,
    stdoutError: null, stderrError: null, stdinFailed: false, exitCode: null, signal: null,
    stdout: Buffer.alloc(0), stdoutBytes: 0, stderr: Buffer.alloc(0), stderrBytes: 0,
  };
}
