/**
 * What http.server.request.duration costs per request, made two ways (issue 13, point 7):
 *   noop         the HTTP instrumentation with a no-op meter: what the engine did before (no metric at all)
 *   instrument   the HTTP instrumentation with the SDK's meter provider (telemetry/sdk.ts hands it over)
 *   middleware   a no-op meter in the instrumentation, and an express middleware of ours recording the
 *                histogram (a 'finish' listener per response; the SDK histogram straight, without the
 *                recorder's label guards: a lower bound of what the middleware would cost)
 * One process, one express app with a route shaped like the API's, the HTTP and express instrumentations
 * registered as instrumentation.ts registers them (span per request included, so the spans cost the same
 * in every variant); variants alternate in rounds, each round a closed loop of keep-alive requests from
 * this process. CPU time per request (process.cpuUsage, client included: the same in every variant), and
 * each variant's extra over `noop` in the same round.
 *
 *   node bench/http-server-duration.ts [--rounds 6] [--requests 4000]
 */
import { metrics } from '@opentelemetry/api';
import { METRIC_HTTP_SERVER_REQUEST_DURATION } from '@opentelemetry/semantic-conventions';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { ExpressInstrumentation, ExpressLayerType } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { register, supportsSyncHooks } from 'import-in-the-middle/register-hooks.mjs';
import { parseArgs } from 'node:util';

if (supportsSyncHooks()) register({ include: ['express', 'http', 'node:http'] });
const http = new HttpInstrumentation({ disableOutgoingRequestInstrumentation: true });
registerInstrumentations({ instrumentations: [http, new ExpressInstrumentation({ ignoreLayersType: [ExpressLayerType.MIDDLEWARE] })] });

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '6' }, requests: { type: 'string', default: '4000' } } });
const rounds = Number(values.rounds);
const requests = Number(values.requests);

const [{ default: express }, { createAgent, request }, { createBenchSdk }, { median, round }] = await Promise.all([
  import('express'), import('./lib/http.ts'), import('./lib/sdk.ts'), import('./lib/stats.ts'),
]);
const sdk = createBenchSdk();
const { meterProvider } = sdk;
const histogram = sdk.meter.createHistogram(METRIC_HTTP_SERVER_REQUEST_DURATION, { unit: 's' });

type Variant = 'noop' | 'instrument' | 'middleware';
let variant: Variant = 'noop';
const app = express();
app.use((req, res, next) => {
  if (variant !== 'middleware') return next();
  const started = performance.now();
  res.once('finish', () => {
    histogram.record((performance.now() - started) / 1000, {
      'http.request.method': req.method, 'url.scheme': 'http', 'network.protocol.version': req.httpVersion,
      ...(req.route && { 'http.route': `${req.baseUrl}${String(req.route.path)}` }), 'http.response.status_code': res.statusCode,
    });
  });
  next();
});
app.use(express.json());
app.post('/api/v1/workflows/:id/executions/sync', (req, res) => {
  res.json({ id: req.params.id, status: 'success', output: req.body });
});
const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const port = (server.address() as { port: number }).port;
const agent = createAgent(8);
const body = JSON.stringify({ input: { question: 'Do you have an API?' } });

function use(next: Variant): void {
  variant = next;
  http.setMeterProvider(next === 'instrument' ? meterProvider : metrics.getMeterProvider());
}

/** CPU microseconds per request over `requests` requests, 8 in flight. */
async function measure(): Promise<number> {
  let sent = 0;
  const before = process.cpuUsage();
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (sent < requests) {
      sent++;
      const result = await request({ agent, port, path: '/api/v1/workflows/quick_answer/executions/sync', body });
      if (result.status !== 200) throw new Error(`status ${result.status}`);
    }
  }));
  await sdk.flush();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / requests;
}

const VARIANTS: Variant[] = ['noop', 'instrument', 'middleware'];
const perRequest: Record<Variant, number[]> = { noop: [], instrument: [], middleware: [] };
const extra: Record<Exclude<Variant, 'noop'>, number[]> = { instrument: [], middleware: [] };
use('noop');
await measure(); // warm-up
for (let r = 0; r < rounds; r++) {
  const order = VARIANTS.map((_, i) => VARIANTS[(i + r) % VARIANTS.length]!);
  const round_: Partial<Record<Variant, number>> = {};
  for (const v of order) {
    use(v);
    round_[v] = await measure();
    perRequest[v].push(round_[v]!);
  }
  extra.instrument.push(round_.instrument! - round_.noop!);
  extra.middleware.push(round_.middleware! - round_.noop!);
}
server.close();
agent.destroy();
process.stdout.write(`${JSON.stringify({
  requests_per_round: requests, rounds,
  cpu_us_per_request_median: Object.fromEntries(VARIANTS.map((v) => [v, round(median(perRequest[v]), 1)])),
  extra_cpu_us_over_noop_median: { instrument: round(median(extra.instrument), 1), middleware: round(median(extra.middleware), 1) },
  extra_cpu_us_over_noop_each_round: extra,
}, null, 2)}\n`);
