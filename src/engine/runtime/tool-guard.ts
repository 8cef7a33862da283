/**
 * The parent-death guard of a tool process. Bun loads it before the tool's script
 * (`bun --preload <this file> <script>`); it is no part of the tool protocol and the tool never sees it.
 *
 * The process that spawns a tool (the engine's spawn helper, or the engine itself with
 * SWITCHYARD_TOOL_PROCESSES=local; "the spawner" below) gives it one end of a socket pair as fd 3 and keeps the
 * other end until the tool has exited. Whenever the spawner's end closes before that (it was killed, SIGKILL
 * included, or crashed; the helper also goes when its engine does), the kernel closes it and this side reads
 * end-of-file: the guard then SIGKILLs the tool's whole process group (the tool leads its own group: the
 * runtime spawns it detached), children included.
 *
 * - Event-driven: no timer, no polling; the socket is unref'd, so it never keeps a finished tool alive.
 * - A spawner that died before the guard started is seen too: the read ends at once.
 * - Without fd 3 (a tool started by hand) the connect fails and the guard does nothing.
 * - It runs on the tool's JavaScript thread: a tool that is stopped (SIGSTOP) or never yields (a busy
 *   synchronous loop) cannot react. The spawn helper SIGKILLs every tool group when its engine goes, and the
 *   engine kills the groups of a helper that died; the records of process-records.ts cover the rest (the
 *   helper stopped too): the next engine to start kills what neither could.
 */

/** The part of Bun's API the guard uses (the engine's type-check has no Bun types). */
declare const Bun: {
  connect(options: { fd: number; socket: Record<'data' | 'end' | 'close' | 'error', (...args: unknown[]) => void> }): Promise<{ unref(): void }>;
};

const ENGINE_LINK_FD = 3;

function killToolGroup(): void {
  try {
    process.kill(-process.pid, 'SIGKILL');
  } catch {
    // Not a group leader (started some other way): the process itself, at least.
    process.kill(process.pid, 'SIGKILL');
  }
}

Bun.connect({
  fd: ENGINE_LINK_FD,
  socket: { data() {}, end: killToolGroup, close: killToolGroup, error: killToolGroup },
}).then(
  (link) => link.unref(),
  () => {
    // No engine link on fd 3: nothing to watch.
  },
);

export {};
