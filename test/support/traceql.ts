/**
 * TraceQL for the tests: syntax errors from the real grammar, and the translation of the dashboards'
 * TraceQL into Jaeger searches.
 *
 * The dashboards query Tempo, but CI's trace store is Jaeger (Tempo is AGPL), whose HTTP API v3 search
 * filters by service, operation (span name) and span duration, not by status. So the stack tests run each
 * dashboard query as a Jaeger search and check the status on the spans it returns. Only the small subset
 * of TraceQL the dashboards use translates; anything else throws, naming the construct, so a new dashboard
 * query the stack tests cannot run fails loudly instead of being skipped or approximated.
 *
 * Both functions read the syntax tree of @grafana/lezer-traceql (the grammar Grafana's query editor uses),
 * never the query text, so `&&` inside a string or a comment cannot fool them.
 */
import { parser } from '@grafana/lezer-traceql';

/** A lezer syntax node (typed through the parser so the tests need not depend on @lezer/common). */
type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];

export interface TraceqlSyntaxError {
  /** Offsets into the query; an error node is often empty (from === to) where a token is missing. */
  from: number;
  to: number;
  /** The query from the error on, for messages ('' at the end of the query). */
  near: string;
}

/** The syntax errors of a query: lezer recovers from them and marks each with an error node. */
export function traceqlSyntaxErrors(query: string): TraceqlSyntaxError[] {
  const errors: TraceqlSyntaxError[] = [];
  parser.parse(query).iterate({
    enter(node) {
      if (node.type.isError) errors.push({ from: node.from, to: node.to, near: query.slice(node.from, node.from + 20) });
    },
  });
  return errors;
}

export type SpanStatus = 'error' | 'ok' | 'unset';

/** One Jaeger search: span name (Jaeger's operation), minimum duration; status and attributes are checked on the results. */
export interface JaegerSearchSpec {
  spanName: string;
  minDurationMs?: number;
  status?: SpanStatus;
  /** Span attributes (`span.<name> = "<value>"`) the matching span must carry. */
  attributes?: Record<string, string>;
}

const MS_PER_UNIT: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
const STATUSES: readonly string[] = ['error', 'ok', 'unset'] satisfies SpanStatus[];
/** A span name as the catalogue writes them; in a `=~` alternative the dot is taken literally. */
const PLAIN_NAME = /^[\w.]+$/;

/**
 * The Jaeger searches equivalent to a query of the subset the dashboards use: one spanset `{ ... }` of
 * conditions joined by `&&` (parentheses allowed), each one of
 *   name = "<span name>"        name =~ "<span name>|<span name>|..."
 *   duration > <duration>       duration >= <duration>        (units ns, us, µs, ms, s, m, h)
 *   status = error | ok | unset
 *   span.<attribute> = "<value>"   (a span attribute equal to a string; any number of them)
 * with exactly one name condition. One search per span name, since a Jaeger search takes one operation:
 * `name = "x"` gives one, `name =~ "a|b"` two. Throws on a syntax error and on anything else.
 */
export function traceqlToJaegerSearches(query: string): JaegerSearchSpec[] {
  const errors = traceqlSyntaxErrors(query);
  if (errors.length > 0) throw new Error(`TraceQL syntax error at offset ${errors[0]!.from} of ${query}`);

  const text = (node: SyntaxNode): string => query.slice(node.from, node.to);
  const unsupported = (node: SyntaxNode, what = node.type.name): Error =>
    new Error(`unsupported TraceQL construct ${what} (${JSON.stringify(text(node))}) in ${query}; the stack tests translate only { name = "..." && duration > ... && status = ... && span.x = "..." }`);

  /**
   * The node's only child, which must be of the given type: anything else is outside the subset. Of several
   * children the error names the one that is neither the expected type nor a nested copy of the node, which
   * is the operator (`>>` is SpansetPipelineExpression(SpansetPipelineExpression Desc SpansetPipelineExpression)).
   */
  const only = (node: SyntaxNode, type: string): SyntaxNode => {
    const kids = children(node);
    const odd = kids.find((k) => k.type.name !== type && k.type.name !== node.type.name) ?? kids[1];
    if (odd !== undefined) throw unsupported(odd);
    if (kids[0] === undefined) throw unsupported(node, `empty ${node.type.name}`);
    return kids[0];
  };

  // TraceQL > SpansetPipelineExpression > SpansetPipeline > SpansetFilter is a lone `{ ... }`. Structural
  // (>>, <<, ~), spanset (&&, ||) and pipe (|) operators nest SpansetPipelineExpressions instead and fail here.
  const top = parser.parse(query).topNode;
  const filter = only(only(only(top, 'SpansetPipelineExpression'), 'SpansetPipeline'), 'SpansetFilter');

  let spanNames: string[] | undefined;
  let minDurationMs: number | undefined;
  let status: SpanStatus | undefined;
  let attributes: Record<string, string> | undefined;
  const once = (node: SyntaxNode, already: unknown): void => {
    // Two conditions on one field are either empty (two names) or a range Jaeger cannot express as written.
    if (already !== undefined) throw unsupported(node, 'a second condition on the same field');
  };

  // A condition is FieldExpression(FieldExpression(IntrinsicField) FieldOp FieldExpression(Static)); `&&`
  // is FieldExpression(FieldExpression And FieldExpression), left-nested; parentheses are a FieldExpression
  // around a single FieldExpression (the parenthesis tokens are anonymous and leave no node).
  const condition = (node: SyntaxNode): void => {
    const kids = children(node);
    const [a, b, c] = kids;
    if (kids.length === 1 && a!.type.name === 'FieldExpression') return condition(a!);
    if (kids.length === 3 && b!.type.name === 'And') {
      condition(a!);
      return condition(c!);
    }
    if (kids.length !== 3 || b!.type.name !== 'FieldOp') throw unsupported(kids.find((k) => k.type.name !== 'FieldExpression') ?? node);

    const op = text(b!);
    const value = only(c!, 'Static');
    const literal = children(value)[0]; // String, Duration, Integer, ...; none for keywords like error or true
    // `span.x` is AttributeField(Span Identifier): the one attribute form the subset takes (not .x, resource.x).
    const attribute = children(a!).length === 1 && children(a!)[0]!.type.name === 'AttributeField' ? children(children(a!)[0]!) : undefined;
    if (attribute !== undefined) {
      const [scope, name] = attribute;
      const condText = `${text(a!)} ${op} ${text(value)}`;
      if (attribute.length !== 2 || scope!.type.name !== 'Span' || name!.type.name !== 'Identifier' || op !== '=' || literal?.type.name !== 'String') {
        throw unsupported(node, `condition ${condText}`);
      }
      attributes ??= {};
      if (text(name!) in attributes) throw unsupported(node, 'a second condition on the same field');
      attributes[text(name!)] = unquote(text(literal));
      return;
    }
    const field = only(a!, 'IntrinsicField'); // other attribute forms (.x, resource.x) are AttributeField: refused above
    const condText = `${text(field)} ${op} ${text(value)}`;

    if (text(field) === 'name' && (op === '=' || op === '=~') && literal?.type.name === 'String') {
      once(node, spanNames);
      const name = unquote(text(literal));
      // A regex alternation of plain names is a set of names; any other regex cannot become Jaeger operations.
      spanNames = op === '=' ? [name] : name.split('|');
      if (op === '=~' && !spanNames.every((n) => PLAIN_NAME.test(n))) throw unsupported(node, `regex ${condText}`);
    } else if (text(field) === 'duration' && (op === '>' || op === '>=') && literal?.type.name === 'Duration') {
      once(node, minDurationMs);
      // The grammar's Duration is one number and one unit (`1h30m` is a syntax error). Jaeger's
      // duration_min is inclusive, so `>` and `>=` make the same search.
      const m = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$/.exec(text(literal));
      if (m === null) throw unsupported(literal, `duration ${text(literal)}`);
      minDurationMs = Number(m[1]) * MS_PER_UNIT[m[2]!]!;
    } else if (text(field) === 'status' && op === '=' && literal === undefined && STATUSES.includes(text(value))) {
      once(node, status);
      status = text(value) as SpanStatus;
    } else {
      throw unsupported(node, `condition ${condText}`);
    }
  };

  if (children(filter).length === 0) throw unsupported(filter, 'empty spanset {}');
  condition(only(filter, 'FieldExpression'));
  if (spanNames === undefined) throw unsupported(filter, 'spanset without a name condition');

  return spanNames.map((spanName) => ({
    spanName,
    ...(minDurationMs !== undefined && { minDurationMs }),
    ...(status !== undefined && { status }),
    ...(attributes !== undefined && { attributes }),
  }));
}

/** Named children, comments left out (they are nodes of the tree, wherever they appear). */
function children(node: SyntaxNode): SyntaxNode[] {
  const kids: SyntaxNode[] = [];
  for (let k = node.firstChild; k !== null; k = k.nextSibling) {
    if (k.type.name !== 'LineComment' && k.type.name !== 'BlockComment') kids.push(k);
  }
  return kids;
}

/** A TraceQL string literal: "..." with backslash escapes (as in JSON for the names we use) or `raw`. */
function unquote(literal: string): string {
  return literal.startsWith('`') ? literal.slice(1, -1) : (JSON.parse(literal) as string);
}
