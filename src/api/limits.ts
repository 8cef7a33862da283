/**
 * Bounds on the work one request may cause, checked before the expensive step: the declared body size
 * before the body is read, the JSON nesting depth before the body is parsed.
 */

/** Deepest JSON nesting a request body may have (its `input` one level less). */
export const MAX_JSON_DEPTH = 64;

/** Parses a body limit such as `1mb`, `100kb` or `65536` (bytes; k/m/g are powers of 1024, as express reads them). */
export function parseByteLimit(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(text);
  if (!match) throw new Error(`"${text}" is not a size such as 1mb, 100kb or 65536`);
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(match[2] ?? 'b').toLowerCase() as 'b' | 'kb' | 'mb' | 'gb'];
  return Math.floor(Number(match[1]) * unit);
}

/**
 * Whether raw JSON text nests arrays/objects deeper than `max`. One linear pass over the bytes, no
 * recursion and no allocation, so a hostile body costs as much as reading it, however deep it goes;
 * brackets inside strings (and escaped quotes) are skipped. Malformed JSON is left to the parser.
 */
export function jsonDepthExceeds(raw: Uint8Array, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const byte = raw[i]!;
    if (inString) {
      if (byte === 0x5c) i++; // backslash: skip the escaped character
      else if (byte === 0x22) inString = false;
    } else if (byte === 0x22) {
      inString = true;
    } else if (byte === 0x5b || byte === 0x7b) {
      if (++depth > max) return true;
    } else if (byte === 0x5d || byte === 0x7d) {
      depth--;
    }
  }
  return false;
}
