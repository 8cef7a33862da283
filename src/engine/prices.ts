import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { GenAiTokenType } from '../telemetry/catalog.ts';
import type { ConfiguredGauges } from '../telemetry/recorder.ts';
import { DefinitionError, readProjectYaml, schemaIssueProblems } from './definitions.ts';

/**
 * The project's price table, `prices.yaml` in the project directory: per model, US dollars per million
 * input and output tokens, and optionally an hourly budget for all of it. Validated at start like the
 * other definitions (errors name the file and the field, and the engine refuses to start); a project
 * without the file prices nothing and has no budget.
 *
 *   models:
 *     gpt-4o-mini: { input_usd_per_million: 0.15, output_usd_per_million: 0.60 }
 *   budget:
 *     usd_per_hour: 2.00
 *
 * The budget is exported as the gauge agent_model_budget_usd_per_hour; the alert ModelCostBudgetBurn
 * compares each job's spending (agent_model_cost_usd_total) with it. It lives here, beside the prices it
 * is counted in, so whoever sets the prices sets the budget in the same file and the same review, and the
 * engine validates both at start; Prometheus rules stay the same for every project.
 *
 * A model is looked up by the name the agent requests (`model.name` in its YAML, gen_ai.request.model):
 * that is the name an operator prices by, and the one the cost metric is labelled with. A model without
 * an entry has no cost, never a guessed one.
 */
export const PRICES_FILE = 'prices.yaml';

const Price = z.number().finite().nonnegative();
const PricesFile = z.strictObject({
  models: z.record(
    z.string().min(1).max(200),
    z.strictObject({ input_usd_per_million: Price, output_usd_per_million: Price }),
  ).default({}),
  budget: z.strictObject({ usd_per_hour: z.number().finite().positive() }).optional(),
});

export interface ModelPrice {
  readonly inputUsdPerMillion: number;
  readonly outputUsdPerMillion: number;
}

export class PriceTable {
  readonly #prices: ReadonlyMap<string, ModelPrice>;
  /** US dollars an hour the project's models may cost (prices.yaml budget.usd_per_hour); undefined: no budget. */
  readonly budgetUsdPerHour: number | undefined;

  constructor(prices: ReadonlyMap<string, ModelPrice> = new Map(), budgetUsdPerHour?: number) {
    this.#prices = prices;
    this.budgetUsdPerHour = budgetUsdPerHour;
  }

  /** What the configured gauges report: the budget, or no series without one. */
  gauges(): ConfiguredGauges {
    return { agentModelBudget: this.budgetUsdPerHour === undefined ? [] : [{ labels: {}, value: this.budgetUsdPerHour }] };
  }

  get size(): number {
    return this.#prices.size;
  }

  priceOf(model: string): ModelPrice | undefined {
    return this.#prices.get(model);
  }

  /** US dollars for `tokens` tokens of `type` on `model`; undefined when the model has no price. */
  costOf(model: string, type: GenAiTokenType, tokens: number): number | undefined {
    const price = this.#prices.get(model);
    if (!price) return undefined;
    return (tokens * (type === 'input' ? price.inputUsdPerMillion : price.outputUsdPerMillion)) / 1_000_000;
  }
}

/** Reads `<projectDir>/prices.yaml`; throws DefinitionError (file and field named) when it is not valid. */
export function loadPrices(projectDir: string): PriceTable {
  const file = join(projectDir, PRICES_FILE);
  if (!existsSync(file)) return new PriceTable();
  const yamlFile = readProjectYaml(file);
  if (yamlFile.problems.length > 0) throw new DefinitionError(yamlFile.problems);
  const parsed = PricesFile.safeParse(yamlFile.raw ?? {});
  if (!parsed.success) throw new DefinitionError(schemaIssueProblems(yamlFile, PricesFile, parsed.error.issues));
  return new PriceTable(new Map(Object.entries(parsed.data.models).map(([model, price]) => [model, {
    inputUsdPerMillion: price.input_usd_per_million,
    outputUsdPerMillion: price.output_usd_per_million,
  }])), parsed.data.budget?.usd_per_hour);
}
