/**
 * How long `child_process.spawn()` blocks the event loop, as the spawning process grows.
 *
 *   node bench/spawn-cost.ts [--calls=40]
 *
 * libuv forks on Linux, and fork copies the parent's page tables: the cost grows with the parent's
 * resident memory, and it is paid on the event loop, once per tool call. Each size runs in a fresh
 * Node process that first touches `ballast` MiB of memory, then times the synchronous part of
 * `spawn(bun, ['--version'])` (the same call shape as the tool runtime: piped stdio, detached).
 */
import { spawn, spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { resolveBunPath } from '../src/engine/runtime/tool-runtime.ts';

const BUN = resolveBunPath();

const { values } = parseArgs({ options: { calls: { type: 'string', default: '40' }, child: { type: 'string' } } });
const calls = Number(values.calls);

if (values.child !== undefined) {
  const ballast: Buffer[] = [];
  for (let i = 0; i < Number(values.child); i++) ballast.push(Buffer.alloc(1 << 20, 1));
  let blockedMs = 0;
  for (let i = 0; i < calls; i++) {
    const began = performance.now();
    const child = spawn(BUN, ['--version'], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    blockedMs += performance.now() - began;
    await new Promise((resolve) => child.on('close', resolve));
  }
  process.stdout.write(JSON.stringify({ rssMiB: process.memoryUsage().rss / 2 ** 20, spawnMs: blockedMs / calls, kept: ballast.length }));
} else {
  console.log('ballast MiB  RSS MiB  spawn() blocks (mean of %d calls)', calls);
  for (const ballast of [0, 100, 200, 400]) {
    const run = spawnSync(process.execPath, [import.meta.filename, `--child=${ballast}`, `--calls=${calls}`], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`child failed: ${run.stderr}`);
    const { rssMiB, spawnMs } = JSON.parse(run.stdout) as { rssMiB: number; spawnMs: number };
    console.log(`${String(ballast).padStart(11)}  ${rssMiB.toFixed(0).padStart(7)}  ${spawnMs.toFixed(2)} ms`);
  }
}
