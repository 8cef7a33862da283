/**
 * Writes grafana/dashboards/<uid>.json from the TypeScript dashboards.
 *
 *   node src/dashboards/generate.ts           write the files
 *   node src/dashboards/generate.ts --check   write nothing; exit 1 listing the files that would change
 *
 * JSON files in the directory that no dashboard produces count as changes too (a renamed uid).
 */
import { readdirSync, readFileSync, writeFileSync, mkdirSync, existsSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDashboards, dashboardFileName, renderDashboard } from './index.ts';

export const DASHBOARDS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../grafana/dashboards');

export interface GenerateResult {
  /** Files whose content differs from what the dashboards produce (or that should not exist). */
  changed: string[];
}

export function generate(opts: { check: boolean; dir?: string }): GenerateResult {
  const dir = opts.dir ?? DASHBOARDS_DIR;
  const wanted = new Map(buildDashboards().map((d) => [dashboardFileName(d), renderDashboard(d)]));
  const existing = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
  const changed: string[] = [];
  for (const [file, content] of wanted) {
    const path = join(dir, file);
    const current = existsSync(path) ? readFileSync(path, 'utf8') : undefined;
    if (current === content) continue;
    changed.push(file);
    if (!opts.check) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(path, content);
    }
  }
  for (const file of existing) {
    if (wanted.has(file)) continue;
    changed.push(file);
    if (!opts.check) rmSync(join(dir, file));
  }
  return { changed: changed.sort() };
}

function main(): void {
  const check = process.argv.includes('--check');
  const { changed } = generate({ check });
  if (check) {
    if (changed.length > 0) {
      console.error(`Dashboards are out of date; run: node src/dashboards/generate.ts\n${changed.map((f) => `  grafana/dashboards/${f}`).join('\n')}`);
      process.exitCode = 1;
    } else {
      console.log('Dashboards are up to date.');
    }
    return;
  }
  console.log(changed.length > 0 ? `Wrote ${changed.map((f) => `grafana/dashboards/${f}`).join(', ')}` : 'Dashboards unchanged.');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
