/**
 * The load generator's entry point (docker compose runs it beside the engine):
 *   SWITCHYARD_URL=http://127.0.0.1:8080[,http://...] LOADGEN_RATE=5 LOADGEN_FAULTS=slow=0.05,fail=0.02 node src/loadgen/main.ts
 * LOADGEN_DURATION_S and LOADGEN_MAX_REQUESTS bound the run (0 = until stopped).
 * The API key: SWITCHYARD_API_KEY_FILE (a file holding the key) or SWITCHYARD_API_KEY; the engine should
 * configure that key with `trigger=loadgen` so its runs are labelled as the load generator's.
 */
import { readFileSync } from 'node:fs';
import { parseFaults, runLoad } from './load.ts';

function apiKey(): string | undefined {
  const file = process.env.SWITCHYARD_API_KEY_FILE;
  if (file) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (error) {
      process.stderr.write(`SWITCHYARD_API_KEY_FILE: cannot read ${file}: ${(error as Error).message}\n`);
      process.exit(2);
    }
  }
  return process.env.SWITCHYARD_API_KEY || undefined;
}

function number(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) {
    process.stderr.write(`${name} must be a non-negative number, got "${text}"\n`);
    process.exit(2);
  }
  return value;
}

let faults;
try {
  faults = parseFaults(process.env.LOADGEN_FAULTS);
} catch (error) {
  process.stderr.write(`LOADGEN_FAULTS: ${(error as Error).message}\n`);
  process.exit(2);
}

// One engine, or several replicas (comma-separated): the requests are spread over them in turn.
const baseUrl = (process.env.SWITCHYARD_URL ?? 'http://127.0.0.1:8080').split(',').map((url) => url.trim().replace(/\/+$/, '')).filter(Boolean);
const rate = number('LOADGEN_RATE', 5);
if (rate <= 0) {
  process.stderr.write('LOADGEN_RATE must be above 0\n');
  process.exit(2);
}
const controller = new AbortController();
process.on('SIGTERM', () => controller.abort());
process.on('SIGINT', () => controller.abort());

let window = { count: 0, failed: 0 };
const report = setInterval(() => {
  process.stdout.write(`${JSON.stringify({ msg: 'loadgen', requests_last_10s: window.count, non_2xx: window.failed, faults })}\n`);
  window = { count: 0, failed: 0 };
}, 10_000);

const summary = await runLoad({
  baseUrl, rate, faults, apiKey: apiKey(),
  durationMs: number('LOADGEN_DURATION_S', 0) * 1000,
  maxRequests: number('LOADGEN_MAX_REQUESTS', 0),
  concurrency: number('LOADGEN_CONCURRENCY', 32),
  signal: controller.signal,
  onResult: (result) => {
    window.count++;
    if (result.status < 200 || result.status >= 300) window.failed++;
  },
});
clearInterval(report);
process.stdout.write(`${JSON.stringify({ msg: 'loadgen finished', ...summary })}\n`);
