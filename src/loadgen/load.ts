/**
 * Steady, realistic traffic for the demo stack and the stack tests, with faults switched on by name.
 * Every run is bounded: by duration, by request count, or both (0 means unbounded, for the demo only).
 */

/**
 * Faults by name, each injected into a share of the support_triage requests through their input's `fault`
 * field: the tool faults reach the lookup_customer tool (examples/tools/lib/tool.ts, when the engine runs with
 * SWITCHYARD_TOOL_FAULTS=1); the model faults reach the triage agent's scripted model
 * (examples/agents/triage_classifier.yaml): `model_error` fails its call (error.type model_http_503), `model_loop`
 * makes it ask for a tool on every turn until its iteration bound, spending tokens all the way.
 */
export const FAULTS = ['slow', 'fail', 'crash', 'hang', 'flood', 'garbage', 'very_slow', 'model_error', 'model_loop'] as const;
export type Fault = (typeof FAULTS)[number];

export interface LoadOptions {
  /** The engine's URL, or the URLs of several replicas sharing one database: requests go round-robin. */
  readonly baseUrl: string | readonly string[];
  /**
   * The load generator's API key, sent as `Authorization: Bearer <key>`. The engine labels the runs of a
   * key configured with `trigger=loadgen` as `loadgen`; undefined sends no key (an engine without keys).
   */
  readonly apiKey: string | undefined;
  /** Requests started per second. */
  readonly rate: number;
  /** Probability (0..1) of each fault per support_triage request. */
  readonly faults: Partial<Record<Fault, number>>;
  readonly durationMs: number;
  readonly maxRequests: number;
  /** Most requests in flight at once; beyond it a tick is skipped (counted), never queued. */
  readonly concurrency: number;
  readonly signal?: AbortSignal;
  readonly onResult?: (result: RequestResult) => void;
}

export interface RequestResult {
  readonly scenario: string;
  readonly status: number;
  readonly ms: number;
}

export interface LoadSummary {
  readonly sent: number;
  readonly skipped: number;
  readonly byStatus: Record<string, number>;
  readonly errors: number;
}

const TICKETS = [
  { email: 'ada@analytical.example', subject: 'Refund for a double charge', body: 'I was charged twice for my invoice, please refund' },
  { email: 'grace@cobol.example', subject: 'Export fails', body: 'The CSV export fails with an error 500 since Monday' },
  { email: 'alan@bletchley.example', subject: 'Locked out', body: 'My 2FA device is lost and I am locked out of my login' },
  { email: 'katherine@orbit.example', subject: 'Feature question', body: 'Can we schedule reports weekly?' },
  { email: 'edsger@shortest.example', subject: 'Slow dashboard', body: 'The dashboard is broken and very slow to load' },
];
const QUESTIONS = ['How much does the pro plan cost?', 'I forgot my password', 'Do you have an API?'];

/** How each fault is asked of support_triage (see FAULTS). */
const FAULT_INPUT: Record<Fault, { fault: string; delay_ms?: number }> = {
  slow: { fault: 'slow', delay_ms: 1_500 },
  very_slow: { fault: 'slow', delay_ms: 4_500 },
  fail: { fault: 'fail' },
  crash: { fault: 'crash' },
  hang: { fault: 'hang' },
  flood: { fault: 'flood' },
  garbage: { fault: 'garbage' },
  model_error: { fault: 'model_error' },
  model_loop: { fault: 'model_loop' },
};

interface Scenario {
  readonly name: string;
  readonly weight: number;
  request(n: number, fault: Fault | undefined): { path: string; body: unknown };
}

const SCENARIOS: readonly Scenario[] = [
  {
    name: 'support_triage_sync', weight: 45,
    request: (n, fault) => ({ path: '/api/v1/workflows/support_triage/executions/sync?timeout_ms=8000', body: { input: { ...TICKETS[n % TICKETS.length], ...(fault ? FAULT_INPUT[fault] : {}) } } }),
  },
  {
    name: 'support_triage_async', weight: 15,
    request: (n, fault) => ({ path: '/api/v1/workflows/support_triage/executions', body: { input: { ...TICKETS[n % TICKETS.length], ...(fault ? FAULT_INPUT[fault] : {}) } } }),
  },
  { name: 'quick_answer_sync', weight: 25, request: (n) => ({ path: '/api/v1/workflows/quick_answer/executions/sync', body: { input: { question: QUESTIONS[n % QUESTIONS.length] } } }) },
  { name: 'customer_lookup_task', weight: 7, request: (n) => ({ path: '/api/v1/tasks/customer_lookup/executions/sync', body: { input: { email: TICKETS[n % TICKETS.length]!.email } } }) },
  { name: 'faq_agent', weight: 5, request: (n) => ({ path: '/api/v1/agents/faq_bot/executions', body: { input: { question: QUESTIONS[n % QUESTIONS.length] } } }) },
  { name: 'bad_input', weight: 3, request: () => ({ path: '/api/v1/workflows/support_triage/executions', body: { input: { email: 'no subject' } } }) },
];
const TOTAL_WEIGHT = SCENARIOS.reduce((sum, s) => sum + s.weight, 0);

/** Parses `slow=0.1,fail=0.05` (or a bare `fail` meaning probability 1); says what is wrong otherwise. */
export function parseFaults(text: string | undefined): Partial<Record<Fault, number>> {
  const faults: Partial<Record<Fault, number>> = {};
  for (const part of (text ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const [name, probability = '1'] = part.split('=');
    if (!FAULTS.includes(name as Fault)) throw new Error(`unknown fault "${name}"; known: ${FAULTS.join(', ')}`);
    const p = Number(probability);
    if (!(p >= 0 && p <= 1)) throw new Error(`fault "${name}": probability must be within 0..1, got "${probability}"`);
    faults[name as Fault] = p;
  }
  return faults;
}

function pickScenario(n: number): Scenario {
  // A deterministic spread (golden-ratio sequence): the same mix every run, no bursts of one scenario.
  let point = ((n * 0.6180339887) % 1) * TOTAL_WEIGHT;
  for (const scenario of SCENARIOS) {
    if (point < scenario.weight) return scenario;
    point -= scenario.weight;
  }
  return SCENARIOS[0]!;
}

function pickFault(faults: LoadOptions['faults']): Fault | undefined {
  const roll = Math.random();
  let edge = 0;
  for (const [fault, probability] of Object.entries(faults) as [Fault, number][]) {
    edge += probability;
    if (roll < edge) return fault;
  }
  return undefined;
}

export async function runLoad(options: LoadOptions): Promise<LoadSummary> {
  const byStatus: Record<string, number> = {};
  let sent = 0;
  let skipped = 0;
  let errors = 0;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  const startedAt = Date.now();
  const intervalMs = 1000 / options.rate;
  const baseUrls = typeof options.baseUrl === 'string' ? [options.baseUrl] : options.baseUrl;

  const fire = async (n: number) => {
    const scenario = pickScenario(n);
    const fault = scenario.name.startsWith('support_triage') ? pickFault(options.faults) : undefined;
    const { path, body } = scenario.request(n, fault);
    const began = performance.now();
    let status = 0;
    try {
      const response = await fetch(baseUrls[n % baseUrls.length] + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` }) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      await response.arrayBuffer();
      status = response.status;
    } catch {
      errors++;
    }
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    options.onResult?.({ scenario: fault ? `${scenario.name}:${fault}` : scenario.name, status, ms: performance.now() - began });
  };

  for (let n = 0; ; n++) {
    if (options.signal?.aborted) break;
    if (options.maxRequests > 0 && sent >= options.maxRequests) break;
    if (options.durationMs > 0 && Date.now() - startedAt >= options.durationMs) break;
    if (inFlight >= options.concurrency) {
      skipped++;
    } else {
      // Scenarios follow the requests sent, not the ticks: skipped ticks do not change the mix.
      const request = fire(sent).finally(() => {
        inFlight--;
        pending.delete(request);
      });
      pending.add(request);
      sent++;
      inFlight++;
    }
    const next = startedAt + (n + 1) * intervalMs;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - Date.now())));
  }
  await Promise.all(pending);
  return { sent, skipped, byStatus, errors };
}
