/** The engine recognises the committed DEMO secrets (compose/demo-secrets/), and nothing else, as such. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { DEMO_API_KEYS, DEMO_DB_PASSWORD, demoSecretsInUse } from '../../src/demo-secrets.ts';
import { repoPath } from './tools.ts';

const DEMO = repoPath('compose/demo-secrets');
const POSTGRES = 'postgres://switchyard@postgres:5432/switchyard';

describe('demo secrets', () => {
  it('are the ones committed under compose/demo-secrets/', () => {
    const config = loadConfig({ SWITCHYARD_API_KEYS_FILE: `${DEMO}/api-keys`, SWITCHYARD_DB: POSTGRES, SWITCHYARD_DB_PASSWORD_FILE: `${DEMO}/postgres-password` });
    expect(config.apiKeys.map((apiKey) => apiKey.key).sort()).toEqual([...DEMO_API_KEYS].sort());
    expect(readFileSync(`${DEMO}/loadgen-key`, 'utf8').trim()).toBe(DEMO_API_KEYS[1]);
    expect(readFileSync(`${DEMO}/postgres-password`, 'utf8').trim()).toBe(DEMO_DB_PASSWORD);
    expect(demoSecretsInUse(config)).toEqual(['API key "demo"', 'API key "loadgen"', 'database password']);
  });

  it('are found in the database URL too, and only the demo keys among others', () => {
    const config = loadConfig({
      SWITCHYARD_API_KEYS: `mine ${'k'.repeat(32)},demo ${DEMO_API_KEYS[0]}`,
      SWITCHYARD_DB: `postgres://switchyard:${DEMO_DB_PASSWORD}@postgres:5432/switchyard`,
    });
    expect(demoSecretsInUse(config)).toEqual(['API key "demo"', 'database password']);
  });

  it('are not reported when the secrets are your own', () => {
    const config = loadConfig({ SWITCHYARD_API_KEYS: `mine ${'k'.repeat(32)}`, SWITCHYARD_DB: `postgres://switchyard:${'p'.repeat(24)}@postgres/switchyard` });
    expect(demoSecretsInUse(config)).toEqual([]);
    expect(demoSecretsInUse(loadConfig({ SWITCHYARD_API_KEYS: `mine ${'k'.repeat(32)}` }))).toEqual([]);
  });
});
