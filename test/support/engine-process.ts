import { spawn, type ChildProcess } from 'node:child_process';
import { eventually } from './engine.ts';

/** How users start the engine (npm start): telemetry's register hook first, then the engine. */
export const ENGINE_ARGS: readonly string[] = ['--import', './src/telemetry/register.ts', 'src/main.ts'];

/** A real engine process, as users run it: `node --import ./src/telemetry/register.ts src/main.ts`. */
export interface EngineProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** The JSON log lines it has written so far. */
  readonly logs: () => Array<Record<string, unknown>>;
  /** Everything it wrote to stdout and stderr so far (console exporters' output too). */
  readonly output: () => string;
  /** Resolves with the exit code once its pipes are drained. */
  readonly exited: Promise<number | null>;
  /** SIGKILL (if still running) and wait for the exit. */
  readonly kill: () => Promise<void>;
}

/** Starts the engine with `env` on top of this process's environment (port 0, tool faults on) and waits for "ready". */
export async function startEngineProcess(env: Record<string, string>): Promise<EngineProcess> {
  const child = spawn(process.execPath, [...ENGINE_ARGS], {
    env: { ...process.env, SWITCHYARD_PORT: '0', SWITCHYARD_TOOL_FAULTS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk));
  // 'close', not 'exit': only then has everything the engine wrote to its pipes been read.
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  // Only the log lines: an SDK console exporter writes multi-line objects to the same stdout.
  const logs = () => out.split('\n').flatMap((line) => {
    if (!line.startsWith('{"')) return [];
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
  const ready = await eventually(async () => logs().find((l) => l['msg'] === 'switchyard engine ready'), (l) => l !== undefined || child.exitCode !== null, 60_000);
  if (!ready) throw new Error(`engine did not start:\n${out}`);
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  return { child, url: String(ready['url']), logs, output: () => out, exited, kill };
}

/**
 * A JSON request to an engine (no API key: test engines listen on loopback without keys, where every POST
 * must say application/json, a body or not).
 */
export async function call(url: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(url + path, {
    method, headers: method === 'POST' ? { 'content-type': 'application/json' } : {}, body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}
