/**
 * Records of live tool processes, so that an engine that starts can kill what an earlier life left running.
 *
 * The guard (tool-guard.ts) kills a tool's group when its engine dies, but only if the tool can still run
 * JavaScript: a stopped tool (SIGSTOP) or one in a busy loop cannot. So each engine also keeps, in a
 * directory chosen by configuration (SWITCHYARD_RUNTIME_DIR), one small file per live tool process:
 *
 *   <dir>/<engine pid>-<engine start time>-<random>/<tool pid>   {"pid", "pgid", "start_time", "boot_id", "tool_id"}
 *
 * written when the tool is spawned (one synchronous write; or, when the spawn helper starts the tools, written by
 * the thread pool, off the event loop) and removed when its group is killed at exit.
 * Start times are field 22 of /proc/<pid>/stat (clock ticks since boot): a pid and its start time name one
 * process of one boot, so a pid the kernel has since handed to another process is never mistaken for a tool.
 *
 * At start an engine reads every other engine's directory. One whose engine still lives (its pid with its
 * start time) is left alone: engines may share the directory as they share the database. In the others,
 * a record whose process still lives with the recorded start time (and boot) gets its process group
 * SIGKILLed, and is logged; every record is then removed, and the directory with it.
 *
 * Linux only (/proc). Elsewhere the records are off and the guard alone stands.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmdirSync, unlink, unlinkSync, writeFile, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The few logger methods the runtime uses (a pino.Logger fits). */
export interface RuntimeLogger {
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/** What a record holds. */
export interface ToolProcessRecord {
  readonly pid: number;
  readonly pgid: number;
  readonly start_time: string;
  readonly boot_id: string;
  readonly tool_id: string;
}

const ENGINE_DIR = /^(\d+)-(\d+)-[0-9a-f]+$/;
const PID_FILE = /^\d+$/;

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or undefined when there is no such process. */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19];
}

function readBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** This engine's records: one file per live tool process, in a directory of its own. */
export class ProcessRecords {
  readonly #dir: string;
  readonly #bootId: string;
  /** Records being written off the event loop, by pid: their removal waits for the write. */
  readonly #writing = new Map<number, Promise<void>>();
  /** Writes and removals still in the thread pool. */
  readonly #pending = new Set<Promise<void>>();

  private constructor(dir: string, bootId: string) {
    this.#dir = dir;
    this.#bootId = bootId;
  }

  /**
   * Kills what earlier engines left in `root`, then opens this engine's own directory there. Undefined where
   * processes have no start time to check (no /proc): records would not be safe to act on. Throws when the
   * directory cannot be made (the engine should not start without the guarantee the operator configured).
   */
  static open(root: string, logger?: RuntimeLogger): ProcessRecords | undefined {
    const bootId = readBootId();
    const ownStart = processStartTime(process.pid);
    if (bootId === undefined || ownStart === undefined) {
      logger?.warn({ dir: root }, 'tool process records are off: this system has no /proc start times; a tool the guard cannot stop outlives a killed engine');
      return undefined;
    }
    // Records name the engine's processes: its user's only (0700 directories, 0600 files), like the store's files.
    mkdirSync(root, { recursive: true, mode: 0o700 });
    reapLeftovers(root, bootId, logger);
    // The random part keeps two runtimes of one process apart.
    const dir = join(root, `${process.pid}-${ownStart}-${randomBytes(4).toString('hex')}`);
    mkdirSync(dir, { mode: 0o700 });
    return new ProcessRecords(dir, bootId);
  }

  /**
   * Records a process that was just spawned (a tool, or the spawn helper; it leads its own process group).
   * Returns its start time, or undefined when it is already gone.
   */
  add(pid: number, toolId: string): string | undefined {
    const startTime = processStartTime(pid);
    if (startTime === undefined) return undefined;
    const record: ToolProcessRecord = { pid, pgid: pid, start_time: startTime, boot_id: this.#bootId, tool_id: toolId };
    writeFileSync(join(this.#dir, String(pid)), JSON.stringify(record), { mode: 0o600 });
    return startTime;
  }

  /**
   * Records a process whose start time is already known (the spawn helper read it), writing the file off the
   * event loop. A failed write is reported to `onError`; the call goes on (the helper and the guard still stand).
   */
  addInBackground(pid: number, toolId: string, startTime: string, onError: (error: Error) => void): void {
    const record: ToolProcessRecord = { pid, pgid: pid, start_time: startTime, boot_id: this.#bootId, tool_id: toolId };
    const written = this.#track(new Promise<void>((resolve) => {
      writeFile(join(this.#dir, String(pid)), JSON.stringify(record), { mode: 0o600 }, (error) => {
        if (error) onError(error);
        resolve();
      });
    }));
    this.#writing.set(pid, written);
    void written.then(() => {
      if (this.#writing.get(pid) === written) this.#writing.delete(pid);
    });
  }

  /** Resolves once every record written or removed off the event loop is on disk (or gone). */
  async settled(): Promise<void> {
    while (this.#pending.size) await Promise.all(this.#pending);
  }

  #track(work: Promise<void>): Promise<void> {
    this.#pending.add(work);
    void work.then(() => this.#pending.delete(work));
    return work;
  }

  /** Forgets, off the event loop, a process recorded by addInBackground (once its record is written). */
  removeInBackground(pid: number): void {
    const writing = this.#writing.get(pid) ?? Promise.resolve();
    this.#writing.delete(pid);
    this.#track(writing.then(() => new Promise<void>((resolve) => unlink(join(this.#dir, String(pid)), () => resolve()))));
  }

  /** Forgets a tool process whose group has been killed. */
  remove(pid: number): void {
    try {
      unlinkSync(join(this.#dir, String(pid)));
    } catch {
      // already gone
    }
  }

  /** Removes this engine's directory once no tool is left in it (a clean shutdown). */
  close(): void {
    try {
      rmdirSync(this.#dir);
    } catch {
      // not empty (a record a concurrent call still holds) or already gone: the next engine cleans up
    }
  }
}

/** Kills the tool process groups recorded by engines that are gone (each logged), and removes their records. */
function reapLeftovers(root: string, bootId: string, logger: RuntimeLogger | undefined): void {
  for (const name of listDir(root)) {
    const engine = ENGINE_DIR.exec(name);
    if (!engine) continue; // not ours: leave it
    const enginePid = Number(engine[1]);
    if (processStartTime(enginePid) === engine[2]) continue; // a live engine sharing the directory
    const dir = join(root, name);
    for (const file of listDir(dir)) {
      const path = join(dir, file);
      const record = PID_FILE.test(file) ? readRecord(path) : undefined;
      if (record && record.boot_id === bootId && processStartTime(record.pid) === record.start_time) {
        killGroup(record.pgid, record.pid);
        logger?.warn({ pid: record.pid, pgid: record.pgid, tool_id: record.tool_id, engine_pid: enginePid },
          `killed tool ${record.tool_id} (process group ${record.pgid}), left running by engine process ${enginePid}, which is gone`);
      } else {
        logger?.debug({ file: path }, 'removed the record of a tool process that is gone');
      }
      try {
        unlinkSync(path);
      } catch {
        // removed meanwhile
      }
    }
    try {
      rmdirSync(dir);
    } catch {
      // something else in it: leave it
    }
  }
}

function readRecord(path: string): ToolProcessRecord | undefined {
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as Partial<ToolProcessRecord>;
    const pidOk = (n: unknown): n is number => Number.isInteger(n) && (n as number) > 1;
    if (!pidOk(value.pid) || !pidOk(value.pgid) || typeof value.start_time !== 'string' || typeof value.boot_id !== 'string') return undefined;
    return { pid: value.pid, pgid: value.pgid, start_time: value.start_time, boot_id: value.boot_id, tool_id: String(value.tool_id ?? 'unknown') };
  } catch {
    return undefined;
  }
}

function killGroup(pgid: number, pid: number): void {
  for (const target of [-pgid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

function listDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}
