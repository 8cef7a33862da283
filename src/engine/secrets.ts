/**
 * Redaction of secret values (tools' `secret_inputs`, the model API keys) from everything the engine
 * stores, answers, traces and logs.
 *
 * A secret can reappear in other forms than its own, whole or inside a longer string; every form below is
 * replaced with `[REDACTED]`, longest first:
 * - as is, URL-encoded (`encodeURIComponent`, and with `+` for spaces as forms send it), hex; each of those
 *   also JSON-escaped once, twice and three times (a tool that puts its input, JSON-encoded, into an error message).
 *   These match case-insensitively: an upper-cased copy, or `%2f` for `%2F`, is the same secret.
 * - base64, standard and URL-safe alphabets, at each of the three alignments a secret can have inside a
 *   longer encoded string (`base64("Bearer " + secret)` carries the secret's bits at an offset): the
 *   characters that encode only the secret's own bytes are matched, case-sensitively (base64 is).
 * Limits, on purpose: values shorter than SECRET_MIN_LENGTH are no secrets (redacting "a" or "42"
 * everywhere would destroy the record); base64 and hex forms only for secrets of ENCODED_MIN_LENGTH or
 * more (shorter encodings are too short to tell from other text); a base64 copy keeps at most a character
 * at each end, which mixes the secret's bits with its neighbours'; other encodings (a hash, a split copy,
 * a secret transformed in any other way) are not recognised.
 */
import { lookup, placeholdersOf, textOf, type TemplateContext } from './templates.ts';

export const REDACTED = '[REDACTED]';
/** Shorter values are not treated as secrets. */
export const SECRET_MIN_LENGTH = 4;
/** Shorter secrets are not looked for in base64 or hex. */
export const ENCODED_MIN_LENGTH = 6;

/** The forms of a set of secrets, compiled: what redactText and redactValue replace. */
export interface SecretForms {
  /** Every form, each as it may appear (case-insensitive ones in one case), longest first. */
  readonly forms: readonly string[];
  readonly pattern: RegExp | undefined;
}

const NO_SECRETS: SecretForms = Object.freeze({ forms: [], pattern: undefined });
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const jsonEscaped = (text: string) => JSON.stringify(text).slice(1, -1);

/** The characters of base64 that encode only `bytes`, when they start `offset` bytes into a longer run. */
function base64Core(bytes: Buffer, offset: number): string {
  const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64').replace(/=+$/, '');
  // Characters before this one carry bits of the padding bytes; the last carries bits of what follows.
  const skip = [0, 2, 3][offset]!;
  return encoded.slice(skip, (offset + bytes.length) % 3 === 0 ? encoded.length : encoded.length - 1);
}

/** Compiles the forms of `secrets` (see the module comment). */
export function secretForms(secrets: Iterable<string>): SecretForms {
  const caseless = new Set<string>();
  const exact = new Set<string>();
  for (const secret of secrets) {
    if (typeof secret !== 'string' || secret.length < SECRET_MIN_LENGTH) continue;
    const texts = [secret, encodeURIComponent(secret), encodeURIComponent(secret).replace(/%20/g, '+')];
    const bytes = Buffer.from(secret, 'utf8');
    if (secret.length >= ENCODED_MIN_LENGTH) {
      texts.push(bytes.toString('hex'));
      const whole = bytes.toString('base64');
      exact.add(whole).add(Buffer.from(secret).toString('base64url'));
      for (const offset of [0, 1, 2]) {
        const core = base64Core(bytes, offset);
        if (core.length < ENCODED_MIN_LENGTH) continue;
        exact.add(core).add(core.replace(/\+/g, '-').replace(/\//g, '_'));
      }
    }
    for (const text of texts) {
      const once = jsonEscaped(text);
      const twice = jsonEscaped(once);
      // Thrice: what a string holding the twice-escaped form shows in its value's JSON (see redactValue).
      caseless.add(text.toLowerCase()).add(once.toLowerCase()).add(twice.toLowerCase()).add(jsonEscaped(twice).toLowerCase());
    }
  }
  for (const form of caseless) exact.delete(form);
  const all = [...[...caseless].map((form) => ({ form, caseless: true })), ...[...exact].map((form) => ({ form, caseless: false }))]
    .sort((a, b) => b.form.length - a.form.length);
  if (all.length === 0) return NO_SECRETS;
  const pattern = new RegExp(all.map(({ form, caseless: c }) => (c ? `(?i:${escapeRegExp(form)})` : escapeRegExp(form))).join('|'), 'g');
  return { forms: all.map(({ form }) => form), pattern };
}

export function redactText(text: string, forms: SecretForms): string {
  if (!forms.pattern || !text) return text;
  forms.pattern.lastIndex = 0;
  return text.replace(forms.pattern, REDACTED);
}

/**
 * A copy of a JSON value with every secret form in its strings (keys included) redacted; the value itself
 * when none is there. One scan of its JSON text tells (a string's raw secret shows there JSON-escaped, a
 * form looked for too), so a large value without secrets costs one pass, not one per string.
 */
export function redactValue<T>(value: T, forms: SecretForms): T {
  if (!forms.pattern) return value;
  const json = JSON.stringify(value);
  if (json === undefined) return value;
  forms.pattern.lastIndex = 0;
  if (!forms.pattern.test(json)) return value;
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

/**
 * The secret texts of one value: the value as text (objects as JSON) and, inside an object or array, each
 * string in it, so that a secret kept in a field of a secret object is found alone too.
 */
function secretTextsOf(value: unknown, into: string[]): void {
  if (value === undefined || value === null) return;
  const text = textOf(value);
  if (text.length >= SECRET_MIN_LENGTH) into.push(text);
  if (typeof value !== 'object') return;
  const walk = (node: unknown) => {
    if (typeof node === 'string') {
      if (node.length >= SECRET_MIN_LENGTH) into.push(node);
    } else if (Array.isArray(node)) {
      node.forEach(walk);
    } else if (node && typeof node === 'object') {
      Object.values(node).forEach(walk);
    }
  };
  walk(value);
}

/** The values of a tool call's declared secret inputs (top-level keys of its input). */
export function secretInputValues(secretKeys: readonly string[] | undefined, input: unknown): string[] {
  if (!secretKeys?.length || !input || typeof input !== 'object' || Array.isArray(input)) return [];
  const values: string[] = [];
  for (const key of secretKeys) {
    if (Object.hasOwn(input, key)) secretTextsOf((input as Record<string, unknown>)[key], values);
  }
  return values;
}

/**
 * The secret values of a tool input rendered from a template: the rendered secret inputs (as
 * secretInputValues), and each value a placeholder put into one of them. `token: "Bearer {{ input.token }}"`
 * makes both "Bearer <token>" and "<token>" secret, so the caller's `input.token` is redacted wherever it
 * goes, not only the whole rendered string.
 */
export function templateSecretValues(secretKeys: readonly string[] | undefined, template: unknown, context: TemplateContext, rendered: unknown): string[] {
  const values = secretInputValues(secretKeys, rendered);
  if (!secretKeys?.length || !template || typeof template !== 'object' || Array.isArray(template)) return values;
  for (const key of secretKeys) {
    if (!Object.hasOwn(template, key)) continue;
    for (const placeholder of placeholdersOf((template as Record<string, unknown>)[key], key)) {
      if (placeholder.path) secretTextsOf(lookup(context, placeholder.path.join('.')), values);
    }
  }
  return values;
}
