/**
 * `npm run stack` (node scripts/stack.ts): the Switchyard stack on 127.0.0.1 without Docker, for
 * developing dashboards, rules and alerts. Starts the real Collector, Prometheus, Jaeger (the trace store
 * the stack tests use; Tempo runs only under docker compose), VictoriaLogs (the log store, likewise for
 * Loki: LogsQL at its printed URL, /select/vmui for its UI), Alertmanager (binaries from
 * scripts/stack-binaries.sh), the pager sink and one engine, then drives healthy load
 * with the load generator until Ctrl-C, and tears everything down.
 *
 * Grafana is not run (no binary is built for it): point a Grafana at the printed Prometheus (and Jaeger)
 * URLs, or read the dashboards' queries with `allDashboardQueries()` and run them in Prometheus's UI.
 *
 * Environment: STACK_LOAD_RATE (requests/s, default 3), STACK_FAULTS (e.g. "fail=0.3", default none),
 * STACK_ALERT_FOR (shorten every alert's `for:`, e.g. "30s"; default: the committed durations),
 * STACK_PROM_INTERVAL (scrape/evaluation interval, default the committed 15s), STACK_KEEP=1 keeps the
 * temporary directory (logs, data) after exit.
 */
import { parseFaults, runLoad } from '../src/loadgen/load.ts';
import { Stack } from '../scripts/stack/stack.ts';

const rate = Number(process.env['STACK_LOAD_RATE'] ?? '3');
const faults = parseFaults(process.env['STACK_FAULTS']);
const controller = new AbortController();
let stopping = false;

const stack = await Stack.start({
  promInterval: process.env['STACK_PROM_INTERVAL'] || undefined,
  alertFor: process.env['STACK_ALERT_FOR'] || undefined,
  metricExportIntervalMs: 10_000,
});
const engine = await stack.startEngine('main');

const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`\n${signal}: stopping the stack...\n`);
  controller.abort();
  await stack.stop({ keep: process.env['STACK_KEEP'] === '1' });
  process.exit(0);
};
// Registered after Stack.start: these replace the harness's own last-resort handlers' exit path.
process.removeAllListeners('SIGINT');
process.removeAllListeners('SIGTERM');
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));

const width = Math.max(...Object.keys(stack.urls).map((k) => k.length));
process.stdout.write(`\nSwitchyard stack is up (logs and data: ${stack.dir})\n`);
for (const [name, url] of Object.entries(stack.urls)) process.stdout.write(`  ${name.padEnd(width)}  ${url}\n`);
process.stdout.write(`  ${'grafana'.padEnd(width)}  not run here (no binary); use docker compose, or query Prometheus directly\n`);
process.stdout.write(`\nDriving load at ${rate}/s${Object.keys(faults).length ? ` with faults ${JSON.stringify(faults)}` : ' (healthy)'}; Ctrl-C to stop.\n`);

let window = { count: 0, non2xx: 0 };
const report = setInterval(() => {
  process.stdout.write(`load: ${window.count} requests in the last 30 s, ${window.non2xx} not 2xx\n`);
  window = { count: 0, non2xx: 0 };
}, 30_000);
await runLoad({
  baseUrl: engine.url, apiKey: engine.loadgenKey, rate, faults, durationMs: 0, maxRequests: 0, concurrency: 32, signal: controller.signal,
  onResult: (r) => {
    window.count++;
    if (r.status < 200 || r.status >= 300) window.non2xx++;
  },
});
clearInterval(report);
