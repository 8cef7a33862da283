/**
 * Redaction of secret values (tools' `secret_inputs`) from everything the engine stores and answers.
 *
 * A secret can reappear in other forms than its own: JSON-escaped inside a string that holds JSON (a tool
 * that puts its input in an error message, quotes and backslashes escaped), or escaped twice. Every form
 * is replaced, longest first.
 */
export const REDACTED = '[REDACTED]';
/** Shorter values are not treated as secrets: redacting "a" or "42" everywhere would destroy the record. */
export const SECRET_MIN_LENGTH = 4;

/** The forms in which a secret may appear in text: as is, JSON-escaped once and twice. */
export function secretForms(secrets: Iterable<string>): string[] {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < SECRET_MIN_LENGTH) continue;
    const once = JSON.stringify(secret).slice(1, -1);
    forms.add(secret).add(once).add(JSON.stringify(once).slice(1, -1));
  }
  return [...forms].sort((a, b) => b.length - a.length);
}

export function redactText(text: string, forms: readonly string[]): string {
  for (const form of forms) if (text.includes(form)) text = text.split(form).join(REDACTED);
  return text;
}

/** A copy of a JSON value with every secret form in its strings (keys included) redacted. */
export function redactValue<T>(value: T, forms: readonly string[]): T {
  if (forms.length === 0) return value;
  const walk = (node: unknown): unknown => {
    if (typeof node === 'string') return redactText(node, forms);
    if (Array.isArray(node)) return node.map(walk);
    if (node && typeof node === 'object') {
      const out: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(node)) out[redactText(key, forms)] = walk(child);
      return out;
    }
    return node;
  };
  return walk(value) as T;
}

/** The values of a tool call's declared secret inputs (top-level keys of its input). */
export function secretInputValues(secretKeys: readonly string[] | undefined, input: unknown): string[] {
  if (!secretKeys?.length || !input || typeof input !== 'object' || Array.isArray(input)) return [];
  const values: string[] = [];
  for (const key of secretKeys) {
    if (!Object.hasOwn(input, key)) continue;
    const value = (input as Record<string, unknown>)[key];
    if (value === undefined || value === null) continue;
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    if (text && text.length >= SECRET_MIN_LENGTH) values.push(text);
  }
  return values;
}
