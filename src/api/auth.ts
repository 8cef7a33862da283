/**
 * API keys: parsing the operator's key list, and checking a request's `Authorization: Bearer <key>`.
 *
 * Format (one format for the file `SWITCHYARD_API_KEYS_FILE` and the variable `SWITCHYARD_API_KEYS`):
 * entries separated by newlines (file) or by `,` / newlines (variable); each entry is
 *   <id> <key> [trigger=loadgen] [trust_trace_context]
 * separated by whitespace; `#` starts a comment line. The id names the caller in records and spans
 * (`[a-zA-Z0-9_.-]{1,64}`); the key is at least 16 characters without whitespace or commas. The optional
 * `trigger=loadgen` marks that caller's traffic as the load generator's: the trigger label comes from
 * the credentials, never from a header a caller can set. `trust_trace_context` lets that caller's
 * trace context decide sampling (a sampled=0 silences its runs); others' context names the trace and
 * parent only.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { hostOfHeader, isLoopback } from '../loopback.ts';
import { ProblemError, problems } from './problem.ts';

export interface ApiKey {
  readonly id: string;
  readonly key: string;
  /** 'loadgen' for the load generator's key; undefined: the trigger follows the route (api, api_sync). */
  readonly trigger: 'loadgen' | undefined;
  /** Whether the caller's trace context may switch sampling off (key option `trust_trace_context`). */
  readonly trustTraceContext?: boolean;
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
    // One word alone is most likely a key without its id: never echo it (it may be the secret).
    if (key === undefined) throw new Error(`${where}: an entry is "<id> <key>" (e.g. "ops 3f9c0b7d6e2a4c18b5e07a9d1c6f2e84"), and this one is a single word; put an id before the key`);
    if (!id || !ID.test(id)) throw new Error(`${where}: the key id must match [a-zA-Z0-9_.-]{1,64} (an entry is "<id> <key>")`);
    if (key.length < MIN_KEY_LENGTH) throw new Error(`${where} (id "${id}"): the key must be at least ${MIN_KEY_LENGTH} characters`);
    let trigger: ApiKey['trigger'];
    let trustTraceContext = false;
    for (const option of options) {
      if (option === 'trigger=loadgen') trigger = 'loadgen';
      else if (option === 'trust_trace_context') trustTraceContext = true;
      else throw new Error(`${where} (id "${id}"): unknown option "${option}"; the options are trigger=loadgen and trust_trace_context`);
    }
    keys.push({ id, key, trigger, ...(trustTraceContext && { trustTraceContext }) });
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
  readonly #trusted: ReadonlySet<string>;
  /** Each request's caller, found once: by the telemetry policy (before the span starts) and the middleware. */
  readonly #callers = new WeakMap<IncomingMessage, Caller | null>();

  constructor(keys: readonly ApiKey[]) {
    this.#keys = keys.map((k) => ({ digest: digest(k.key), caller: { keyId: k.id, trigger: k.trigger } }));
    this.#trusted = new Set(keys.filter((k) => k.trustTraceContext).map((k) => k.id));
  }

  /** The caller whose bearer key a request carries; null for none or an unknown one (refused with 401). */
  callerOf(req: IncomingMessage): Caller | null {
    let caller = this.#callers.get(req);
    if (caller === undefined) {
      const match = bearerOf(req.headers.authorization);
      caller = (match ? this.identify(match) : undefined) ?? null;
      this.#callers.set(req, caller);
    }
    return caller;
  }

  /**
   * How the telemetry treats a request (telemetry/instrumentations.ts): one the API will refuse with 401 is
   * not traced; a caller whose key is marked trust_trace_context sends trusted trace context; any other's
   * context names the trace and parent but cannot switch sampling off.
   */
  traceTreatment(req: IncomingMessage): 'ignore' | 'trusted' | 'untrusted' {
    if (!this.enabled || !req.url?.startsWith('/api')) return 'untrusted';
    const caller = this.callerOf(req);
    if (caller === null) return 'ignore';
    return caller.keyId !== null && this.#trusted.has(caller.keyId) ? 'trusted' : 'untrusted';
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

/**
 * Express middleware: 401 problem+json unless the request carries a known bearer key; sets res.locals.caller.
 * A request with two Authorization headers is refused (400) rather than judged by one of them: Node keeps
 * the first, a proxy in front may have checked the other.
 */
export function requireApiKey(authenticator: Authenticator) {
  return (req: Request, res: Response, next: NextFunction) => {
    if ((req.headersDistinct['authorization']?.length ?? 0) > 1) {
      res.setHeader('connection', 'close');
      return next(new ProblemError(problems.badRequest('send one Authorization header ("Authorization: Bearer <key>"), not several')));
    }
    if (!authenticator.enabled) {
      res.locals['caller'] = ANONYMOUS;
      return next();
    }
    const header = req.headers.authorization;
    const caller = authenticator.callerOf(req);
    if (!caller) {
      res.setHeader('www-authenticate', 'Bearer realm="switchyard"');
      // The body is never read for a refused request: close the connection rather than drain it.
      res.setHeader('connection', 'close');
      return next(new ProblemError(problems.unauthorized(header === undefined
        ? 'this API needs an API key: send "Authorization: Bearer <key>"'
        : bearerOf(header) ? 'the API key is not valid' : 'the Authorization header must be "Bearer <key>"')));
    }
    res.locals['caller'] = caller;
    next();
  };
}

/**
 * The key-less mode (no API keys: allowed on a loopback address only) made loopback-only in fact, against
 * a web page in the user's browser, the one other party that can reach a loopback port:
 * - the Host header must name a loopback address, so a DNS-rebinding page (its own name resolved to
 *   127.0.0.1) cannot read answers;
 * - a request with an Origin that is not a loopback page is refused, so no page elsewhere can post;
 * - a POST must be `Content-Type: application/json` whatever its body (an empty one included): a page can
 *   send no such request to another origin without a CORS preflight, which this API never grants.
 * With keys none of this applies: the key is the protection, and the engine may sit behind a proxy of any name.
 */
export function keylessLoopbackOnly(authenticator: Authenticator) {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (authenticator.enabled) return next();
    const host = hostOfHeader(req.headers.host);
    if (host === undefined || !isLoopback(host)) {
      return next(new ProblemError(problems.forbidden('this engine runs without API keys and serves loopback only: the Host header must name a loopback address (127.0.0.1, localhost, [::1])')));
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !isLoopbackOrigin(origin)) {
      return next(new ProblemError(problems.forbidden('this engine runs without API keys: requests from a web page are served only from a page on this machine (a loopback Origin)')));
    }
    if (req.method === 'POST' && req.path.startsWith('/api/') && !req.is('application/json')) {
      return next(new ProblemError(problems.unsupportedMediaType(req.headers['content-type'])));
    }
    next();
  };
}

function isLoopbackOrigin(origin: string): boolean {
  return URL.canParse(origin) && isLoopback(new URL(origin).hostname);
}

function bearerOf(header: string | undefined): string | undefined {
  return header === undefined ? undefined : /^Bearer[ ]+(\S+)\s*$/i.exec(header)?.[1];
}

/** The caller of a request that passed `requireApiKey`. */
export function callerOf(res: Response): Caller {
  return (res.locals['caller'] as Caller | undefined) ?? ANONYMOUS;
}
