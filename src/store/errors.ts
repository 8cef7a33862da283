/**
 * A store that cannot do what was asked of it (its server is away, a statement timed out, the database
 * refused): the API answers 503, as it does for a SQLite error. `code` is the driver's (a SQLSTATE such as
 * 57014, or a socket error such as ECONNREFUSED) when it had one; the message carries no credentials.
 */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
  readonly code: string | undefined;

  constructor(message: string, options: { code?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.code = options.code;
  }
}

/**
 * A database URL fit for a log line: its password (`scheme://user:password@host`, and a `password=`
 * parameter) replaced with `***`. The user info ends at the last `@` before the query, so a password
 * that was not percent-encoded is hidden whole too.
 */
export function redactUrl(url: string): string {
  const authority = url.indexOf('://');
  if (authority < 0) return url;
  const query = url.indexOf('?', authority);
  const at = url.lastIndexOf('@', query < 0 ? url.length : query);
  let redacted = url;
  if (at > authority) {
    const colon = url.indexOf(':', authority + 3);
    if (colon > 0 && colon < at) redacted = `${url.slice(0, colon + 1)}***${url.slice(at)}`;
  }
  return redacted.replace(/([?&]password=)[^&#]*/gi, '$1***');
}

/** `text` with every URL's password, and every occurrence of the given secrets, replaced with `***`. */
export function redactCredentials(text: string, secrets: readonly string[] = []): string {
  let redacted = text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)\S*@/gi, '$1***@').replace(/(password=)[^&\s]*/gi, '$1***');
  for (const secret of secrets) if (secret.length > 0) redacted = redacted.split(secret).join('***');
  return redacted;
}
