/**
 * The DEMO secrets committed under compose/demo-secrets/ so that `docker compose up` runs as is: anyone who
 * has read the repository knows them. An engine configured with one of them says so at start (src/main.ts),
 * once and loudly; README.md ("Replace the demo secrets") says how to use your own.
 */
import type { Config } from './config.ts';

/** The keys of compose/demo-secrets/api-keys (test/config/demo-secrets.test.ts keeps them equal to the file). */
export const DEMO_API_KEYS: readonly string[] = ['switchyard-demo-key-change-me', 'switchyard-demo-loadgen-key-change-me'];
/** compose/demo-secrets/postgres-password. */
export const DEMO_DB_PASSWORD = 'switchyard-demo-db-password-change-me';

/** What of the configuration is a committed demo secret: the ids of demo API keys, and `database password`. */
export function demoSecretsInUse(config: Pick<Config, 'apiKeys' | 'store'>): string[] {
  const found = config.apiKeys.filter((apiKey) => DEMO_API_KEYS.includes(apiKey.key)).map((apiKey) => `API key "${apiKey.id}"`);
  if (config.store.kind === 'postgres') {
    const urlPassword = URL.canParse(config.store.url) ? decodeURIComponent(new URL(config.store.url).password) : '';
    if ((config.store.password ?? urlPassword) === DEMO_DB_PASSWORD) found.push('database password');
  }
  return found;
}
