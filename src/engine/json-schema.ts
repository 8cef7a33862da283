import { z } from 'zod';

/**
 * JSON Schemas of definitions (a workflow's input, a tool's input): checked for shape at load, then
 * compiled to a validator with zod's `z.fromJSONSchema` (a runtime dependency already).
 *
 * Why the hand check: `z.fromJSONSchema` accepts schemas that are not valid (`properties: 5`,
 * `required: "a"`, `minimum: "q"`, a misspelt keyword) and quietly validates nothing for them. ajv could
 * check against the meta-schema, but it is a devDependency only (the config tests use it); adding a
 * second validator at run time for a one-off shape check is not worth it. The check below covers the
 * keywords of draft 2020-12 and draft-07, and rejects unknown keywords (as ajv's strict mode does), so
 * a typo such as `requried` is an error at start instead of a constraint that never applies.
 */

export type InputCheck = { ok: true; value: unknown } | { ok: false; problems: string[] };
export type CompiledSchema = { ok: true; validate: (input: unknown) => InputCheck } | { ok: false; problems: string[] };

const TYPES = new Set(['null', 'boolean', 'object', 'array', 'number', 'string', 'integer']);
const SCHEMA = ['not', 'if', 'then', 'else', 'additionalItems', 'contains', 'additionalProperties', 'propertyNames',
  'unevaluatedItems', 'unevaluatedProperties', 'contentSchema'];
const SCHEMA_MAP = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'];
const SCHEMA_LIST = ['allOf', 'anyOf', 'oneOf', 'prefixItems'];
const NUMBER = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'];
const COUNT = ['minLength', 'maxLength', 'minItems', 'maxItems', 'minProperties', 'maxProperties', 'minContains', 'maxContains'];
const STRING = ['title', 'description', '$comment', 'format', '$schema', '$id', '$ref', '$anchor', '$dynamicRef', '$dynamicAnchor',
  'contentMediaType', 'contentEncoding'];
const BOOLEAN = ['uniqueItems', 'deprecated', 'readOnly', 'writeOnly'];
const ANY = ['const', 'default', 'enum', 'examples', 'required', 'type', 'items', 'pattern', 'multipleOf', 'dependentRequired',
  'dependencies', '$vocabulary'];
const KNOWN = new Set([...SCHEMA, ...SCHEMA_MAP, ...SCHEMA_LIST, ...NUMBER, ...COUNT, ...STRING, ...BOOLEAN, ...ANY]);

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);
const isStringList = (value: unknown) => Array.isArray(value) && value.every((item) => typeof item === 'string');

/** What is wrong with a JSON Schema, each problem as `<path inside the schema>: <what to fix>`; [] when it is valid. */
export function jsonSchemaProblems(schema: unknown, at = ''): string[] {
  const problems: string[] = [];
  const where = (key: string) => (at ? `${at}.${key}` : key);
  const report = (key: string, message: string) => problems.push(`${where(key)}: ${message}`);
  if (typeof schema === 'boolean') return problems;
  if (!isObject(schema)) return [`${at || '(schema)'}: a schema must be an object (or true/false)`];
  for (const [key, value] of Object.entries(schema)) {
    if (!KNOWN.has(key)) {
      report(key, 'not a JSON Schema keyword (misspelt?)');
    } else if (SCHEMA.includes(key)) {
      problems.push(...jsonSchemaProblems(value, where(key)));
    } else if (SCHEMA_MAP.includes(key)) {
      if (!isObject(value)) {
        report(key, 'must be an object of schemas');
        continue;
      }
      for (const [name, sub] of Object.entries(value)) {
        if (key === 'patternProperties' && !validRegex(name)) report(`${key}.${name}`, 'not a valid regular expression');
        problems.push(...jsonSchemaProblems(sub, where(`${key}.${name}`)));
      }
    } else if (SCHEMA_LIST.includes(key)) {
      if (!Array.isArray(value) || value.length === 0) report(key, 'must be a non-empty array of schemas');
      else value.forEach((sub, i) => problems.push(...jsonSchemaProblems(sub, where(`${key}.${i}`))));
    } else if (NUMBER.includes(key)) {
      if (typeof value !== 'number') report(key, 'must be a number');
    } else if (COUNT.includes(key)) {
      if (!Number.isInteger(value) || (value as number) < 0) report(key, 'must be a non-negative integer');
    } else if (STRING.includes(key)) {
      if (typeof value !== 'string') report(key, 'must be a string');
    } else if (BOOLEAN.includes(key)) {
      if (typeof value !== 'boolean') report(key, 'must be true or false');
    } else if (key === 'type') {
      const types = Array.isArray(value) ? value : [value];
      if (types.length === 0 || !types.every((t) => typeof t === 'string' && TYPES.has(t))) {
        report(key, `must be one of ${[...TYPES].join(', ')} (or a list of them), got ${JSON.stringify(value)}`);
      }
    } else if (key === 'required') {
      if (!isStringList(value)) report(key, 'must be a list of property names');
    } else if (key === 'enum' || key === 'examples') {
      if (!Array.isArray(value)) report(key, 'must be a list');
    } else if (key === 'items') {
      if (Array.isArray(value)) value.forEach((sub, i) => problems.push(...jsonSchemaProblems(sub, where(`${key}.${i}`))));
      else problems.push(...jsonSchemaProblems(value, where(key)));
    } else if (key === 'pattern') {
      if (typeof value !== 'string' || !validRegex(value)) report(key, 'must be a valid regular expression');
    } else if (key === 'multipleOf') {
      if (typeof value !== 'number' || !(value > 0)) report(key, 'must be a number above 0');
    } else if (key === 'dependentRequired') {
      if (!isObject(value) || !Object.values(value).every(isStringList)) report(key, 'must map property names to lists of property names');
    } else if (key === 'dependencies') {
      if (!isObject(value)) report(key, 'must be an object');
      else for (const [name, sub] of Object.entries(value)) if (!isStringList(sub)) problems.push(...jsonSchemaProblems(sub, where(`${key}.${name}`)));
    } else if (key === '$vocabulary') {
      if (!isObject(value)) report(key, 'must be an object');
    }
    // const, default: any value
  }
  return problems;
}

function validRegex(source: string): boolean {
  try {
    new RegExp(source, 'u');
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks a schema and builds its validator. `value` is zod's parse of the input: properties the schema
 * does not list are dropped from it (the tool runtime ignores it and sends the input it was given).
 */
export function compileJsonSchema(schema: unknown): CompiledSchema {
  const problems = jsonSchemaProblems(schema);
  if (problems.length > 0) return { ok: false, problems };
  let compiled: z.ZodType;
  try {
    compiled = z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
  } catch (error) {
    return { ok: false, problems: [`(schema): not usable: ${(error as Error).message}`] };
  }
  return {
    ok: true,
    validate(input) {
      const result = compiled.safeParse(input);
      return result.success
        ? { ok: true, value: result.data }
        : { ok: false, problems: result.error.issues.map((issue) => `${issue.path.join('.') || 'input'}: ${issue.message}`) };
    },
  };
}
