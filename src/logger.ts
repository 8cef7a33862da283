import { trace } from '@opentelemetry/api';
import pino, { type Logger } from 'pino';

/**
 * How log lines are written: `json`, one JSON object a line (for machines: a log shipper, `jq`); `pretty`,
 * one readable line each (time, level, message, then the fields as key=value); `auto`, pretty when
 * stdout is a terminal and JSON otherwise (a pipe, a file, a container's log).
 */
export type LogFormat = 'auto' | 'json' | 'pretty';

/**
 * Logs; a line written inside a span carries its trace_id and span_id, so logs join traces. With telemetry on,
 * the pino instrumentation (loaded by telemetry/register.ts) also sends every record as an OTLP log record,
 * with the same ids.
 */
export function createLogger(level: string, options: { destination?: pino.DestinationStream; format?: LogFormat } = {}): Logger {
  const pretty = options.format === 'pretty' || ((options.format ?? 'auto') === 'auto' && options.destination === undefined && process.stdout.isTTY === true);
  return pino({
    level,
    base: { service: 'switchyard-engine' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin() {
      const span = trace.getActiveSpan();
      if (!span) return {};
      const { traceId, spanId } = span.spanContext();
      return { trace_id: traceId, span_id: spanId };
    },
  }, pretty ? prettyDestination(options.destination, process.stdout.isTTY === true) : options.destination);
}

const LEVEL_COLORS: Record<string, string> = { fatal: '35', error: '31', warn: '33', info: '32', debug: '90', trace: '90' };
/** Fields every line has, shown in the line's head or not at all. */
const HEAD_FIELDS = new Set(['time', 'level', 'msg', 'service']);

/**
 * A pino destination that turns each JSON line into `HH:MM:SS.mmm LEVEL message key=value ...`, the level
 * colored on a terminal; an error's stack follows on its own lines. Written synchronously (a terminal
 * write is), so a fatal line is out before the process exits.
 */
export function prettyDestination(next: pino.DestinationStream | undefined, color: boolean): pino.DestinationStream {
  const write = (text: string) => (next ? next.write(text) : process.stdout.write(text));
  return {
    write(line: string) {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        write(line);
        return;
      }
      write(`${formatLine(entry, color)}\n`);
    },
  };
}

export function formatLine(entry: Record<string, unknown>, color: boolean): string {
  const level = String(entry['level'] ?? '');
  const label = level.toUpperCase().padEnd(5);
  const time = typeof entry['time'] === 'string' ? entry['time'].slice(11, 23) : '';
  const head = `${time} ${color ? `\x1b[${LEVEL_COLORS[level] ?? '0'}m${label}\x1b[0m` : label} ${String(entry['msg'] ?? '')}`;
  let stack = '';
  const fields: string[] = [];
  for (const [key, value] of Object.entries(entry)) {
    if (HEAD_FIELDS.has(key) || value === undefined) continue;
    if (key === 'err' && value && typeof value === 'object') {
      const err = value as { type?: string; message?: string; stack?: string };
      fields.push(`err=${JSON.stringify(`${err.type ?? 'Error'}: ${err.message ?? ''}`)}`);
      if (err.stack) stack = `\n    ${err.stack.split('\n').slice(1).map((l) => l.trim()).join('\n    ')}`;
      continue;
    }
    const text = typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
    fields.push(`${key}=${text}`);
  }
  const tail = fields.length === 0 ? '' : color ? ` \x1b[2m${fields.join(' ')}\x1b[0m` : ` ${fields.join(' ')}`;
  return `${head}${tail}${stack}`;
}
