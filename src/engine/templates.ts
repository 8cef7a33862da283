/**
 * `{{ path.to.value }}` templates for task inputs, agent instructions and workflow outputs.
 *
 * A string that is exactly one placeholder takes the value's own type (an object stays an object);
 * placeholders inside longer strings are stringified. A path that resolves to nothing renders as
 * `undefined`, and object keys whose value is undefined are dropped, so optional inputs (such as a
 * fault to inject) simply disappear when the caller does not give them. That is why the loader checks
 * every placeholder's path at start (placeholdersOf): a misspelt name would otherwise vanish the same way.
 */
const PLACEHOLDER = /\{\{\s*([a-zA-Z0-9_.-]+)\s*\}\}/g;
const WHOLE = /^\{\{\s*([a-zA-Z0-9_.-]+)\s*\}\}$/;

export type TemplateContext = Record<string, unknown>;

export function render(template: unknown, context: TemplateContext): unknown {
  if (typeof template === 'string') return renderString(template, context);
  if (Array.isArray(template)) return template.map((item) => render(item, context));
  if (template && typeof template === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(template)) {
      const rendered = render(value, context);
      if (rendered !== undefined) out[key] = rendered;
    }
    return out;
  }
  return template;
}

function renderString(template: string, context: TemplateContext): unknown {
  if (!template.includes('{{')) return template;
  const whole = WHOLE.exec(template);
  if (whole) return lookup(context, whole[1]!);
  return template.replace(PLACEHOLDER, (_, path: string) => textOf(lookup(context, path)));
}

/**
 * A value as text: objects as JSON, never through their own `toString` (a caller's input may carry a
 * `toString` key, and String() of such an object throws).
 */
export function textOf(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** One `{{ path }}` of a template: the field it sits in (dotted, from `field` given) and its path segments. */
export interface Placeholder {
  readonly field: string;
  readonly text: string;
  /** undefined: `{{` that does not form a placeholder (a typo such as `{{ input.email }` or a space inside). */
  readonly path: readonly string[] | undefined;
}

/** Every placeholder in a template (strings, arrays and objects, walked as render walks them), in order. */
export function placeholdersOf(template: unknown, field: string): Placeholder[] {
  const found: Placeholder[] = [];
  const walk = (value: unknown, at: string) => {
    if (typeof value === 'string') {
      for (const match of value.matchAll(PLACEHOLDER)) found.push({ field: at, text: match[0], path: match[1]!.split('.') });
      const rest = value.replace(PLACEHOLDER, '');
      if (rest.includes('{{')) found.push({ field: at, text: rest.slice(rest.indexOf('{{'), rest.indexOf('{{') + 40), path: undefined });
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => walk(item, `${at}.${i}`));
    } else if (value && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) walk(item, `${at}.${key}`);
    }
  };
  walk(template, field);
  return found;
}

export function lookup(context: unknown, path: string): unknown {
  let current: unknown = context;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, part)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}
