/**
 * The framed protocol between the engine and its spawn helper (helper-processes.ts, spawn-helper.ts), over one
 * socket pair (the helper's fd 3). A frame:
 *
 *   u32 LE  length of what follows
 *   u8      type (FRAME)
 *   u32 LE  call id (0 for frames about no call)
 *   u32 LE  header length, then the header: UTF-8 JSON
 *   ...     body: raw bytes (a request's stdin; a finished call's stdout then stderr)
 *
 * engine -> helper   run(id, {script, env, timeoutMs, label, limits}, stdin)   cancel(id)   shutdown
 * helper -> engine   started(id, {pid, startTime})   done(id, DoneHeader, stdout + stderr)
 *
 * Bytes are never re-encoded: a tool's binary stdout reaches the engine exactly as written. A frame is written
 * as a few buffers under one cork (no copy of the body), and read with one copy at most.
 */
import type { ProcessRun, ProcessSpec, TerminateReason } from './processes.ts';
import type { ToolLimits } from './sandbox.ts';

export const FRAME = { run: 1, cancel: 2, shutdown: 3, started: 4, done: 5 } as const;

/** A frame this large is a protocol error (stdout is capped far below it). */
const MAX_FRAME_BYTES = 1 << 30;
const FIXED = 1 + 4 + 4;

export interface RunHeader {
  readonly script: string;
  readonly env: Record<string, string>;
  readonly timeoutMs: number;
  readonly label: string;
  readonly limits?: ToolLimits;
}

export interface StartedHeader {
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat, read by the helper; null when there is none (the process is gone, no /proc). */
  readonly startTime: string | null;
}

interface ErrorFacts {
  readonly message: string;
  readonly code?: string;
  readonly errno?: number;
  readonly syscall?: string;
  readonly path?: string;
}

/** A ProcessRun without its buffers; the body holds `stdoutLength` bytes of stdout, then stderr. */
export interface DoneHeader {
  readonly pid: number | null;
  readonly terminated: TerminateReason | null;
  readonly overflow: boolean;
  readonly spawnError: ErrorFacts | null;
  readonly stdoutError: ErrorFacts | null;
  readonly stderrError: ErrorFacts | null;
  readonly stdinFailed: boolean;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stdoutBytes: number;
  readonly stderrBytes: number;
  readonly stdoutLength: number;
}

/** The buffers of one frame, to write in order. */
export function encodeFrame(type: number, id: number, header: object | null, ...body: Uint8Array[]): Buffer[] {
  const json = header === null ? undefined : Buffer.from(JSON.stringify(header));
  const headerLength = json?.length ?? 0;
  let bodyLength = 0;
  for (const part of body) bodyLength += part.length;
  const head = Buffer.allocUnsafe(4 + FIXED);
  head.writeUInt32LE(FIXED + headerLength + bodyLength, 0);
  head.writeUInt8(type, 4);
  head.writeUInt32LE(id, 5);
  head.writeUInt32LE(headerLength, 9);
  const parts: Buffer[] = [head];
  if (json) parts.push(json);
  for (const part of body) if (part.length) parts.push(Buffer.isBuffer(part) ? part : Buffer.from(part.buffer, part.byteOffset, part.length));
  return parts;
}

/** Writes a frame's buffers as one (corked) write. False when the stream refused it (destroyed). */
export function writeFrame(stream: { cork(): void; uncork(): void; write(chunk: Buffer): boolean; destroyed: boolean }, parts: Buffer[]): boolean {
  if (stream.destroyed) return false;
  stream.cork();
  for (const part of parts) stream.write(part);
  stream.uncork();
  return true;
}

export type FrameHandler = (type: number, id: number, header: unknown, body: Buffer) => void;

/** Cuts a byte stream into frames. Throws on a malformed frame (the link is then unusable). */
export class FrameReader {
  readonly #onFrame: FrameHandler;
  #chunks: Buffer[] = [];
  #size = 0;
  /** Length of the frame being read, or -1 while its length prefix is awaited. */
  #need = -1;

  constructor(onFrame: FrameHandler) {
    this.#onFrame = onFrame;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    for (;;) {
      if (this.#need === -1) {
        if (this.#size < 4) return;
        this.#need = this.#take(4).readUInt32LE(0);
        if (this.#need < FIXED || this.#need > MAX_FRAME_BYTES) throw new Error(`spawn protocol: bad frame length ${this.#need}`);
      }
      if (this.#size < this.#need) return;
      const frame = this.#take(this.#need);
      this.#need = -1;
      const headerLength = frame.readUInt32LE(5);
      if (FIXED + headerLength > frame.length) throw new Error('spawn protocol: header beyond its frame');
      const header: unknown = headerLength ? JSON.parse(frame.toString('utf8', FIXED, FIXED + headerLength)) : null;
      this.#onFrame(frame.readUInt8(0), frame.readUInt32LE(1), header, frame.subarray(FIXED + headerLength));
    }
  }

  /** The next n bytes: a view of the first chunk when it holds them, else one copy. */
  #take(n: number): Buffer {
    this.#size -= n;
    const first = this.#chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    let index = 0;
    // The chunks used up are dropped once at the end: one shift() per chunk made a frame that arrived in many
    // small reads cost quadratic time.
    while (filled < n) {
      const chunk = this.#chunks[index]!;
      const used = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, used);
      filled += used;
      if (used === chunk.length) index += 1;
      else this.#chunks[index] = chunk.subarray(used);
    }
    this.#chunks.splice(0, index);
    return out;
  }
}

/** The run frame of a call. */
export function encodeRun(id: number, spec: ProcessSpec): Buffer[] {
  const header: RunHeader = { script: spec.script, env: spec.env, timeoutMs: spec.timeoutMs, label: spec.label, limits: spec.limits };
  return encodeFrame(FRAME.run, id, header, typeof spec.stdin === 'string' ? Buffer.from(spec.stdin) : spec.stdin);
}

/** What a run frame asks for. */
export function decodeRun(header: RunHeader, body: Buffer): Pick<ProcessSpec, 'script' | 'env' | 'timeoutMs' | 'label' | 'stdin' | 'limits'> {
  return { script: header.script, env: header.env, timeoutMs: header.timeoutMs, label: header.label, stdin: body, limits: header.limits };
}

function errorFacts(error: Error | null): ErrorFacts | null {
  if (!error) return null;
  const e = error as NodeJS.ErrnoException;
  return { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path };
}

function errorFrom(facts: ErrorFacts | null): Error | null {
  if (!facts) return null;
  const { message, ...rest } = facts;
  return Object.assign(new Error(message), rest);
}

/** The done frame of a finished run. */
export function encodeDone(id: number, run: ProcessRun): Buffer[] {
  const header: DoneHeader = {
    pid: run.pid, terminated: run.terminated, overflow: run.overflow, spawnError: errorFacts(run.spawnError),
    stdoutError: errorFacts(run.stdoutError), stderrError: errorFacts(run.stderrError), stdinFailed: run.stdinFailed,
    exitCode: run.exitCode, signal: run.signal, stdoutBytes: run.stdoutBytes, stderrBytes: run.stderrBytes, stdoutLength: run.stdout.length,
  };
  return encodeFrame(FRAME.done, id, header, run.stdout, run.stderr);
}

/** The run a done frame reports. */
export function decodeDone(header: DoneHeader, body: Buffer): ProcessRun {
  return {
    pid: header.pid, terminated: header.terminated, overflow: header.overflow, spawnError: errorFrom(header.spawnError), lost: null,
    stdoutError: errorFrom(header.stdoutError), stderrError: errorFrom(header.stderrError), stdinFailed: header.stdinFailed,
    exitCode: header.exitCode, signal: header.signal, stdout: body.subarray(0, header.stdoutLength), stdoutBytes: header.stdoutBytes,
    stderr: body.subarray(header.stdoutLength), stderrBytes: header.stderrBytes,
  };
}
