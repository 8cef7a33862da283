import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DefinitionError } from '../../src/engine/definitions.ts';
import { loadPrices, PriceTable } from '../../src/engine/prices.ts';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});
/** A project directory holding only a prices.yaml with `text`. */
function project(text: string): { dir: string; file: string } {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = mkdtempSync(join(tmpdir(), 'switchyard-prices-'));
  writeFileSync(join(dir, 'prices.yaml'), text);
  return { dir, file: relative(process.cwd(), join(dir, 'prices.yaml')) };
}
function problemsOf(projectDir: string): string[] {
  try {
    loadPrices(projectDir);
  } catch (error) {
    expect(error).toBeInstanceOf(DefinitionError);
    return (error as DefinitionError).problems;
  }
  throw new Error('loadPrices accepted an invalid file');
}

describe('the price table', () => {
  it('the sample project prices its scripted models, not the local llama', () => {
    const prices = loadPrices('examples');
    expect(prices.priceOf('scripted-triage-v1')).toEqual({ inputUsdPerMillion: 2.5, outputUsdPerMillion: 10 });
    expect(prices.priceOf('llama3.2')).toBeUndefined();
  });

  it('cost = tokens x price per million, by token type; no price, no cost', () => {
    const prices = new PriceTable(new Map([['m', { inputUsdPerMillion: 3, outputUsdPerMillion: 15 }], ['free', { inputUsdPerMillion: 0, outputUsdPerMillion: 0 }]]));
    expect(prices.costOf('m', 'input', 2_000_000)).toBe(6);
    expect(prices.costOf('m', 'output', 1_000)).toBeCloseTo(0.015, 12);
    expect(prices.costOf('free', 'output', 1_000)).toBe(0);
    expect(prices.costOf('unknown', 'input', 1_000)).toBeUndefined();
  });

  it('the hourly budget: read from budget.usd_per_hour, exported as the budget gauge; none without one', () => {
    expect(loadPrices('examples').budgetUsdPerHour).toBe(30);
    expect(loadPrices('examples').gauges()).toEqual({ agentModelBudget: [{ labels: {}, value: 30 }] });
    const { dir: withBudget } = project('budget: { usd_per_hour: 2.5 }\n');
    expect(loadPrices(withBudget).budgetUsdPerHour).toBe(2.5);
    expect(new PriceTable().gauges()).toEqual({ agentModelBudget: [] });
    expect(problemsOf(project('budget: { usd_per_hour: 0 }\n').dir)).toEqual([expect.stringMatching(/prices\.yaml:1: budget\.usd_per_hour: /)]);
    expect(problemsOf(project('budget: { usd_per_day: 10 }\n').dir)).toEqual(expect.arrayContaining([expect.stringMatching(/prices\.yaml:1: budget\.usd_per_day: unknown field "usd_per_day"; did you mean "usd_per_hour"/)]));
  });

  it('a project without prices.yaml prices nothing', () => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-prices-'));
    expect(loadPrices(dir).size).toBe(0);
  });

  it('errors name the file and the field', () => {
    const { dir: bad, file } = project([
      'models:',
      '  gpt-4o: { input_usd_per_million: "2.50", output_usd_per_million: 10 }',
      '  cheap: { input_usd_per_million: -1, output_usd_per_million: 1 }',
      '  partial: { input_usd_per_million: 1 }',
      '  typo: { input_usd_per_million: 1, output_usd_per_million: 1, currency: EUR }',
    ].join('\n'));
    const problems = problemsOf(bad);
    expect(problems).toHaveLength(4);
    expect(problems[0]).toMatch(new RegExp(`^${file.replace(/[.]/g, '\\.')}:\\d+: models\\.gpt-4o\\.input_usd_per_million: .*number`));
    expect(problems[1]).toMatch(/: models\.cheap\.input_usd_per_million: .*>=0/);
    expect(problems[2]).toMatch(/: models\.partial\.output_usd_per_million: /);
    expect(problems[3]).toMatch(/:5: models\.typo\.currency: unknown field "currency" \(the fields here: input_usd_per_million, output_usd_per_million\)/);
  });

  it('unknown top-level fields and YAML syntax errors are refused with the file named', () => {
    expect(problemsOf(project('model:\n  a: { input_usd_per_million: 1, output_usd_per_million: 1 }\n').dir)[0]).toMatch(/prices\.yaml:1: model: unknown field "model"; did you mean "models"/);
    rmSync(dir!, { recursive: true, force: true });
    expect(problemsOf(project('models: [unclosed\n').dir)[0]).toMatch(/prices\.yaml:\d+: not valid YAML/);
  });
});
