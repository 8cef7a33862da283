/**
 * Runs the tests beside a CPU-burning load, as a busy CI runner or a laptop doing other work would:
 * LOAD_BURNERS busy loops (default 2, one per core of the 2-core machines this project is built on),
 * each its own process, started before vitest and killed after it, however it ends.
 *
 *   npm run test:loaded                                  # the whole unit suite
 *   npm run test:loaded -- test/engine/sweeper.test.ts   # some files (vitest's arguments)
 *   LOAD_BURNERS=4 npm run test:loaded -- ...            # heavier
 *
 * Exits with vitest's code. Tests must hold here: no wall-clock assertions, conditions waited for.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';

const burnerCount = Number(process.env['LOAD_BURNERS'] ?? 2);
if (!Number.isInteger(burnerCount) || burnerCount < 0) {
  console.error(`LOAD_BURNERS must be a whole number (got "${process.env['LOAD_BURNERS']}")`);
  process.exit(2);
}
const burners: ChildProcess[] = Array.from({ length: burnerCount }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
const stopBurners = () => {
  for (const burner of burners) if (burner.exitCode === null && burner.signalCode === null) burner.kill('SIGKILL');
};
process.on('exit', stopBurners);
console.error(`test:loaded: ${burnerCount} busy loop(s) beside the tests on ${availableParallelism()} core(s)`);

const vitest = spawn(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', ...process.argv.slice(2)], { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => vitest.kill(signal));
vitest.on('close', (code, signal) => {
  stopBurners();
  process.exit(code ?? (signal ? 1 : 0));
});
