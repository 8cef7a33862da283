/**
 * API keys: parsing the operator's key list, and checking a request's `Authorization: Bearer <key>`.
 *
 * Format (one format for the file `SWITCHYARD_API_KEYS_FILE` and the variable `SWITCHYARD_API_KEYS`):
 * entries separated by newlines (file) or by `,` / newlines (variable); each entry is
 *   <id> <key> [trigger=loadgen]
 * separated by whitespace; `#` starts a comment line. The id names the caller in records and spans
 * (`[a-zA-Z0-9_.-]{1,64}`); the key is at least 16 characters without whitespace or commas. The optional
 * `trigger=loadgen` marks that caller's traffic as the load generator's: the trigger label comes from
 * the credentials, never from a header a caller can set.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { ProblemError, problems } from './problem.ts';

export interface ApiKey {
  readonly id: string;
  readonly key: string;
  /** 'loadgen' for the load generator's key; undefined: the trigger follows the route (api, api_sync). */
  readonly trigger: 'loadgen' | undefined;
}

/** Who made a request: the id of the key it presented; null when the engine runs without keys (loopback only). */
export interface Caller {
  readonly keyId: string | null;
  readonly trigger: 'loadgen' | undefined;
}

const ID = /^[a-zA-Z0-9_.-]{1,64}$/;
export const MIN_KEY_LENGTH = 16;

/** Parses a key list; `source` names where it came from in error messages (never the keys themselves). */
export function parseApiKeys(text: string, source: string, separators: RegExp = /\r?\n/): ApiKey[] {
  const keys: ApiKey[] = [];
  const entries = text.split(separators);
  entries.forEach((raw, index) => {
    const entry = raw.trim();
    if (entry === '' || entry.startsWith('#')) return;
    const where = `${source}, entry ${index + 1}`;
    const [id, key, ...options] = entry.split(/\s+/);
    if (!id || !ID.test(id)) throw new Error(`${where}: the key id must match [a-zA-Z0-9_.-]{1,64}`);
    if (!key || key.length < MIN_KEY_LENGTH) throw new Error(`${where} (id "${id}"): the key must be at least ${MIN_KEY_LENGTH} characters`);
    let trigger: ApiKey['trigger'];
    for (const option of options) {
      if (option === 'trigger=loadgen') trigger = 'loadgen';
      else throw new Error(`${where} (id "${id}"): unknown option "${option}"; the only option is trigger=loadgen`);
    }
    keys.push({ id, key, trigger });
  });
  return keys;
}

/** Merges key lists; ids and keys must each be unique, or a caller's id would be ambiguous. */
export function mergeApiKeys(...lists: ApiKey[][]): ApiKey[] {
  const all = lists.flat();
  const ids = new Set<string>();
  const values = new Set<string>();
  for (const key of all) {
    if (ids.has(key.id)) throw new Error(`API key id "${key.id}" is defined twice`);
    if (values.has(key.key)) throw new Error(`API key "${key.id}" reuses another id's key`);
    ids.add(key.id);
    values.add(key.key);
  }
  return all;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Checks bearer keys in constant time: every stored key is compared (no early exit), each as a SHA-256
 * digest, so the comparison never depends on where the first differing byte is, nor on the key length.
 */
export class Authenticator {
  readonly #keys: ReadonlyArray<{ readonly digest: Buffer; readonly caller: Caller }>;

  constructor(keys: readonly ApiKey[]) {
    this.#keys = keys.map((k) => ({ digest: digest(k.key), caller: { keyId: k.id, trigger: k.trigger } }));
  }

  get enabled(): boolean {
    return this.#keys.length > 0;
  }

  /** The caller a presented key belongs to, or undefined. */
  identify(presented: string): Caller | undefined {
    const presentedDigest = digest(presented);
    let found: Caller | undefined;
    for (const { digest: stored, caller } of this.#keys) {
      if (timingSafeEqual(stored, presentedDigest) && found === undefined) found = caller;
    }
    return found;
  }
}

const ANONYMOUS: Caller = Object.freeze({ keyId: null, trigger: undefined });

/** Express middleware: 401 problem+json unless the request carries a known bearer key; sets res.locals.caller. */
export function requireApiKey(authenticator: Authenticator) {
  return (req: Request, res: Response, next: NextFunction) => {
    if (!authenticator.enabled) {
      res.locals['caller'] = ANONYMOUS;
      return next();
    }
    const header = req.headers.authorization;
    const match = header === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    const caller = match ? authenticator.identify(match[1]!) : undefined;
    if (!caller) {
      res.setHeader('www-authenticate', 'Bearer realm="switchyard"');
      // The body is never read for a refused request: close the connection rather than drain it.
      res.setHeader('connection', 'close');
      return next(new ProblemError(problems.unauthorized(header === undefined
        ? 'this API needs an API key: send "Authorization: Bearer <key>"'
        : match ? 'the API key is not valid' : 'the Authorization header must be "Bearer <key>"')));
    }
    res.locals['caller'] = caller;
    next();
  };
}

/** The caller of a request that passed `requireApiKey`. */
export function callerOf(res: Response): Caller {
  return (res.locals['caller'] as Caller | undefined) ?? ANONYMOUS;
}
