import { trace } from '@opentelemetry/api';
import pino, { type Logger } from 'pino';

/** JSON logs; a line written inside a span carries its trace_id and span_id, so logs join traces. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
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
  }, destination);
}
