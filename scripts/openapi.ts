/**
 * Writes docs/openapi.json, the project-independent OpenAPI document, from the API's zod schemas.
 *
 *   node scripts/openapi.ts           write the file
 *   node scripts/openapi.ts --check   write nothing; exit 1 when the file is not what the code produces
 *
 * Bounds an operator configures are stated at their defaults (loadConfig with no environment).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openApiDocument } from '../src/api/openapi.ts';
import { loadConfig } from '../src/config.ts';

export const OPENAPI_FILE = resolve(dirname(fileURLToPath(import.meta.url)), '../docs/openapi.json');

export function renderOpenApiFile(): string {
  const config = loadConfig({});
  return `${JSON.stringify(openApiDocument({ bounds: { syncTimeoutMaxMs: config.syncTimeoutMaxMs } }), null, 2)}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const wanted = renderOpenApiFile();
  let current: string | undefined;
  try {
    current = readFileSync(OPENAPI_FILE, 'utf8');
  } catch {
    current = undefined;
  }
  if (process.argv.includes('--check')) {
    if (current !== wanted) {
      console.error('docs/openapi.json is out of date; run: npm run openapi');
      process.exitCode = 1;
    } else {
      console.log('docs/openapi.json is up to date.');
    }
  } else if (current !== wanted) {
    writeFileSync(OPENAPI_FILE, wanted);
    console.log('wrote docs/openapi.json');
  }
}
