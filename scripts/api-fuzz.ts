/**
 * Fuzzes the HTTP API with Schemathesis against a real engine: `node src/main.ts` on a loopback port with a
 * temporary SQLite store, the sample project, and one API key; Schemathesis reads the engine's own
 * document (GET /api/v1/openapi.json, with the key) and runs its examples, coverage, fuzzing and stateful
 * phases with every check, a fixed seed and a bounded number of cases per operation. Exit code: Schemathesis's.
 *
 *   node scripts/api-fuzz.ts [extra schemathesis arguments]
 *
 * Schemathesis comes from scripts/schemathesis.sh (a virtualenv in the cache). Its settings that need a
 * reason (the expected statuses of a check) are in scripts/schemathesis.toml, with the reasons.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SEED = process.env['SWITCHYARD_FUZZ_SEED'] ?? '23';
const MAX_EXAMPLES = process.env['SWITCHYARD_FUZZ_EXAMPLES'] ?? '25';

const located = spawnSync('bash', [join(root, 'scripts/schemathesis.sh'), '--no-install'], { encoding: 'utf8' });
if (located.status !== 0) {
  process.stderr.write(located.stderr);
  process.exit(1);
}
const st = located.stdout.trim();

const dir = mkdtempSync(join(tmpdir(), 'switchyard-fuzz-'));
const key = randomBytes(24).toString('hex');
// As npm start runs it: telemetry's register hook first.
const engine = spawn(process.execPath, ['--import', './src/telemetry/register.ts', 'src/main.ts'], {
  cwd: root,
  env: {
    ...process.env,
    SWITCHYARD_HOST: '127.0.0.1', SWITCHYARD_PORT: '0', SWITCHYARD_DB: join(dir, 'fuzz.db'), SWITCHYARD_RUNTIME_DIR: join(dir, 'runtime'),
    SWITCHYARD_API_KEYS: `fuzz ${key}`, SWITCHYARD_API_KEYS_FILE: '',
    // A sync start waits at most 2 s (the document the engine serves says so): a paused workflow, or one
    // that runs long, answers 408 within the run's time budget instead of holding a worker for 5 minutes.
    SWITCHYARD_SYNC_TIMEOUT_MAX_MS: '2000', SWITCHYARD_SYNC_TIMEOUT_MS: '2000',
    // No Collector here: the run tests the API, and exports to nowhere would only add noise.
    OTEL_SDK_DISABLED: 'true',
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const exited = new Promise<number | null>((done) => engine.once('close', (code) => done(code)));

let output = '';
const url = await new Promise<string>((done, fail) => {
  engine.stdout!.on('data', (chunk: Buffer) => {
    output += chunk;
    for (const line of output.split('\n')) {
      if (!line.includes('switchyard engine ready')) continue;
      done(String((JSON.parse(line) as { url: string }).url));
    }
  });
  void exited.then((code) => fail(new Error(`the engine exited (${code}) before it was ready:\n${output}`)));
});
// The engine's own log stays out of the report; its warnings and errors are printed after the run.
engine.stdout!.removeAllListeners('data');
const problems: string[] = [];
engine.stdout!.on('data', (chunk: Buffer) => {
  for (const line of String(chunk).split('\n')) if (/"level":(40|50|60)/.test(line)) problems.push(line);
});

const started = performance.now();
const args = [
  '--config-file', join(root, 'scripts/schemathesis.toml'),
  'run', `${url}/api/v1/openapi.json`, '--url', url,
  '--header', `Authorization: Bearer ${key}`,
  '--checks', 'all', '--phases', 'examples,coverage,fuzzing,stateful',
  '--seed', SEED, '--max-examples', MAX_EXAMPLES, '--workers', '2', '--request-timeout', '15',
  '--generation-database', 'none', '--no-color',
  ...process.argv.slice(2),
];
const fuzz = spawn(st, args, { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, SCHEMATHESIS_TELEMETRY: 'false' } });
let report = '';
fuzz.stdout!.on('data', (chunk: Buffer) => {
  report += chunk;
  process.stdout.write(chunk);
});
const code = await new Promise<number | null>((done) => fuzz.once('close', (c) => done(c)));
const seconds = ((performance.now() - started) / 1000).toFixed(1);

engine.kill('SIGTERM');
const stopped = await Promise.race([exited, new Promise((done) => setTimeout(done, 15_000, 'timeout'))]);
if (stopped === 'timeout') {
  engine.kill('SIGKILL');
  await exited;
}
if (problems.length > 0) console.log(`engine warnings and errors during the run:\n${problems.join('\n')}`);
rmSync(dir, { recursive: true, force: true });
console.log(`schemathesis: exit ${code}, ${seconds} s, seed ${SEED}, at most ${MAX_EXAMPLES} examples per operation`);
// Its summary ("1474 generated, 1474 passed, 28 skipped" or "... 4 found 4 unique failures ...") as the plain
// closing line a CI log reader counts.
const generated = Number(/(\d+) generated/.exec(report)?.[1] ?? 0);
const failed = Number(/found (\d+) unique failures/.exec(report)?.[1] ?? (code === 0 ? 0 : 1));
const passed = Number(/generated, (\d+) passed/.exec(report)?.[1] ?? Math.max(0, generated - failed));
console.log(`api-fuzz: ${passed} passed, ${failed} failed`);
process.exit(code ?? 1);
