/**
 * The spawn helper: a small, long-lived Node process that starts an engine's tools, so that the engine's event
 * loop never forks the engine (fork copies the page tables of the forking process: the engine's cost grows with
 * its heap, this process's stays that of a bare Node).
 *
 *   node spawn-helper.ts '<LocalToolProcessesOptions as JSON>'     (started by helper-processes.ts, never by hand)
 *
 * It runs a LocalToolProcesses: each tool is `bun --preload tool-guard.ts <script>` in a process group of its
 * own, with its timeout, output caps and group kill, and the guard's fd 3 linked to THIS process (a tool dies
 * when its helper dies). It talks to the engine over fd 3 (spawn-protocol.ts): a `run` frame starts a tool, a
 * `started` frame gives back its pid, a `done` frame how it ended; `cancel` terminates one, `shutdown` all.
 *
 * It lives exactly as long as its link to the engine: when the engine closes it or dies (SIGKILL included: the
 * kernel closes the engine's end) the helper SIGKILLs every live tool group, stopped ones included, and exits.
 * Terminal and service-manager signals (SIGINT, SIGTERM, SIGHUP) are ignored: the engine's shutdown decides
 * what happens to its tools. It writes nothing to stdout; stderr is the engine's (a crash shows there).
 */
import { Socket } from 'node:net';
import { processStartTime } from './process-records.ts';
import { LocalToolProcesses, type LocalToolProcessesOptions } from './processes.ts';
import { decodeRun, encodeDone, encodeFrame, FRAME, FrameReader, writeFrame, type RunHeader, type StartedHeader } from './spawn-protocol.ts';

const ENGINE_LINK_FD = 3;

const options = JSON.parse(process.argv[2] ?? '{}') as LocalToolProcessesOptions;
const processes = new LocalToolProcesses({ ...options, recordsDir: undefined, logger: undefined });
const calls = new Map<number, AbortController>();
const link = new Socket({ fd: ENGINE_LINK_FD, readable: true, writable: true });

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {});

let ending = false;
function engineGone(): void {
  if (ending) return;
  ending = true;
  processes.killAll();
  process.exit(0);
}

const reader = new FrameReader((type, id, header, body) => {
  switch (type) {
    case FRAME.run: {
      const controller = new AbortController();
      calls.set(id, controller);
      const run = header as RunHeader;
      void processes.run({
        ...decodeRun(run, body), signal: controller.signal,
        // The start time is read here, off the engine's event loop: the engine records the tool with it.
        onStarted: (pid) => writeFrame(link, encodeFrame(FRAME.started, id, { pid, startTime: processStartTime(pid) ?? null } satisfies StartedHeader)),
      }).then((result) => {
        calls.delete(id);
        writeFrame(link, encodeDone(id, result));
      });
      break;
    }
    case FRAME.cancel:
      calls.get(id)?.abort();
      break;
    case FRAME.shutdown:
      // Each live call ends with reason `shutdown` and its done frame; the engine then closes the link.
      void processes.shutdown();
      break;
    default:
      throw new Error(`spawn protocol: unknown frame type ${type}`);
  }
});

link.on('data', (chunk: Buffer) => {
  try {
    reader.push(chunk);
  } catch (error) {
    process.stderr.write(`switchyard spawn helper: ${(error as Error).message}; exiting\n`);
    engineGone();
  }
});
link.on('end', engineGone);
link.on('close', engineGone);
link.on('error', engineGone);
