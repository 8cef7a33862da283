/**
 * The one place that picks the store from the configuration: SWITCHYARD_DB=postgres://... (or
 * postgresql://) is PostgreSQL, anything else a SQLite file (the default). The driver of the store not
 * chosen is never loaded.
 */
import type { StoreConfig } from '../config.ts';
import { redactUrl, type StoreUnavailableError } from './errors.ts';
import type { Store } from './store.ts';

export interface OpenStoreOptions {
  /** This engine's instance id, in PostgreSQL's application_name (pg_stat_activity tells the replicas apart). */
  readonly instanceId: string;
  /** Errors of idle PostgreSQL connections (the server went away between queries). */
  readonly onIdleError?: (error: StoreUnavailableError) => void;
}

/** Opens the configured store, creating or migrating its schema; throws when it cannot be used. */
export async function openStore(config: StoreConfig, options: OpenStoreOptions): Promise<Store> {
  if (config.kind === 'sqlite') {
    const { SqliteStore } = await import('./sqlite.ts');
    return new SqliteStore(config.path);
  }
  const { PostgresStore } = await import('./postgres.ts');
  return PostgresStore.open({
    url: config.url, ...(config.password === undefined ? {} : { password: config.password }), poolMax: config.poolMax, statementTimeoutMs: config.statementTimeoutMs, connectTimeoutMs: config.connectTimeoutMs,
    applicationName: `switchyard ${options.instanceId}`, onIdleError: options.onIdleError,
  });
}

/** What to show of the store in logs: the SQLite path, or the PostgreSQL URL without its password. */
export function storeLabel(config: StoreConfig): string {
  return config.kind === 'sqlite' ? config.path : redactUrl(config.url);
}

/** What the operator can do when the store cannot be opened. */
export function openFailureHint(config: StoreConfig): string {
  return config.kind === 'sqlite'
    ? 'restore it from a backup, or point SWITCHYARD_DB at a new file'
    : 'check that the server is up and reachable from here, the database exists and the user and password in SWITCHYARD_DB are right';
}
