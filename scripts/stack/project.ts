/**
 * The project the stack's engines run: a copy of examples/ with test-only additions, so that what
 * the sample project cannot show within a test's time still reaches the real stack:
 *   An agent `unreachable_model` whose model calls fail (no server at its base URL), for the GenAI error metrics.
 *   Optionally an hourly budget lowered from examples/prices.yaml's (`budgetUsdPerHour`), so that an engine's
 *      spending under the load generator's model faults passes it within minutes rather than an hour.
 *   A tool `slow_sleeper` (the echo script with a 60 s timeout) and a task `slow_sleep` running it: calls
 *      that succeed after 32 s fall in the 30-60 s bucket, whose p95 (58.5 s) is above 80% of the timeout
 *      (SlowToolExecution), and each run lives long enough to pass the lowered ExecutionsStuck threshold.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const EXAMPLES = resolve(import.meta.dirname, '..', '..', 'examples');

export const SLOW_TOOL = 'slow_sleeper';
export const SLOW_TASK = 'slow_sleep';
export const TRACED_TOOL = 'lookup_customer';
export const UNREACHABLE_AGENT = 'unreachable_model';

export function writeStackProject(dir: string, options: { readonly budgetUsdPerHour?: number } = {}): string {
  cpSync(EXAMPLES, dir, { recursive: true });
  if (options.budgetUsdPerHour !== undefined) {
    const prices = join(dir, 'prices.yaml');
    const text = readFileSync(prices, 'utf8');
    const budget = /^(budget:\n  usd_per_hour: )\S+$/m;
    if (!budget.test(text)) throw new Error(`${prices}: expected a budget block (budget: / usd_per_hour: n) to lower`);
    writeFileSync(prices, text.replace(budget, `$1${options.budgetUsdPerHour}`));
  }
  // The traced tool exports its own span when it may see the Collector's endpoint.
  const lookup = join(dir, 'tools', `${TRACED_TOOL}.yaml`);
  if (!/^env: \[.*OTEL_EXPORTER_OTLP_ENDPOINT.*\]$/m.test(readFileSync(lookup, 'utf8'))) {
    throw new Error(`${lookup}: expected its env allowlist to name OTEL_EXPORTER_OTLP_ENDPOINT`);
  }
  writeFileSync(join(dir, 'tools', `${SLOW_TOOL}.yaml`), [
    `id: ${SLOW_TOOL}`,
    'description: Stack tests only. Echoes its input; with _fault slow it sleeps past 30 s.',
    'script: echo.ts',
    'timeout_ms: 60000',
    'env: []',
    'secret_inputs: []',
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'tasks', `${SLOW_TASK}.yaml`), [
    `id: ${SLOW_TASK}`,
    `description: Stack tests only. Runs ${SLOW_TOOL}.`,
    `tool: ${SLOW_TOOL}`,
    'input: "{{ input }}"',
    '',
  ].join('\n'));
  // An OpenAI-compatible model at a closed port: its calls fail, which is how the GenAI duration metric's
  // error_type label reaches Prometheus (the scripted models never fail).
  writeFileSync(join(dir, 'agents', `${UNREACHABLE_AGENT}.yaml`), [
    `id: ${UNREACHABLE_AGENT}`,
    'description: Stack tests only. A model nobody serves; every call fails.',
    'instructions: Answer the question.',
    'model:',
    '  provider: openai-compatible',
    '  base_url: http://127.0.0.1:9/v1',
    '  name: unreachable',
    'tools: []',
    'max_iterations: 1',
    '',
  ].join('\n'));
  return dir;
}
