import { ID_LABEL, MODEL_LABEL, type LabelSpec } from './catalog.ts';

/** Value every label falls back to when its value is not allowed or its stream is full. */
export const FOLDED = 'other';

export const ID_PATTERN = /^[a-zA-Z0-9_.-]{1,64}$/;
/** Model names: an id's characters plus `:` (tags: llama3:8b) and `/` (org/model), up to 128 characters. */
export const MODEL_PATTERN = /^[a-zA-Z0-9_.:/-]{1,128}$/;

/** How many distinct values one id label may take before new ones fold into `other`. */
export const MAX_DISTINCT_IDS = 100;

/**
 * Keeps one label's values safe: enum labels accept their allowed set, id labels a short identifier
 * pattern (model labels a model name's) and at most MAX_DISTINCT_IDS distinct values. Anything else becomes `other`, so a
 * misbehaving caller (ten thousand generated tool ids, an execution id in the wrong place) cannot grow
 * the series count or the guard's own memory without bound.
 */
export class LabelGuard {
  readonly #allowed: ReadonlySet<string> | undefined;
  readonly #pattern: RegExp;
  readonly #seen = new Set<string>();

  constructor(spec: LabelSpec) {
    this.#allowed = spec === ID_LABEL || spec === MODEL_LABEL ? undefined : new Set(spec);
    this.#pattern = spec === MODEL_LABEL ? MODEL_PATTERN : ID_PATTERN;
  }

  admit(value: string): string {
    if (this.#allowed) return this.#allowed.has(value) ? value : FOLDED;
    if (this.#seen.has(value)) return value;
    if (!this.#pattern.test(value) || this.#seen.size >= MAX_DISTINCT_IDS) return FOLDED;
    this.#seen.add(value);
    return value;
  }
}
