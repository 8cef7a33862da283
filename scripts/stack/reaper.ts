/**
 * Watchdog of the stack harness: `node reaper.ts <harness pid> <pgid file>`. When the harness process
 * disappears (SIGKILL, a crashed test worker) the process groups listed in the file are terminated, so
 * no Collector, Prometheus, Jaeger, Alertmanager, engine or tool outlives it. Exits on SIGTERM (the
 * harness stopped everything itself).
 */
import { readFileSync } from 'node:fs';

const [parentArg, pgidFile] = process.argv.slice(2);
const parent = Number(parentArg);
if (!Number.isInteger(parent) || !pgidFile) {
  process.stderr.write('usage: node reaper.ts <pid> <pgid file>\n');
  process.exit(2);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function groups(): number[] {
  try {
    return readFileSync(pgidFile!, 'utf8').split('\n').map(Number).filter((n) => Number.isInteger(n) && n > 1);
  } catch {
    return [];
  }
}

function signal(pgids: readonly number[], sig: NodeJS.Signals): void {
  for (const pgid of pgids) {
    try {
      process.kill(-pgid, sig);
    } catch {
      // gone
    }
  }
}

process.on('SIGTERM', () => process.exit(0));
const timer = setInterval(() => {
  if (alive(parent)) return;
  clearInterval(timer);
  const pgids = groups();
  signal(pgids, 'SIGTERM');
  setTimeout(() => {
    signal(pgids, 'SIGKILL');
    process.exit(0);
  }, 3_000);
}, 500);
