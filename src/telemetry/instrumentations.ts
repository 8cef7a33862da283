/**
 * The auto-instrumentations `instrumentation.ts` registered before the engine loaded (none when the
 * engine runs without `--import ./src/telemetry/instrumentation.ts`, as in tests). The SDK gives them its
 * meter provider when it starts: they were created before it existed, and the metrics API, unlike the
 * trace API, has no proxy that would forward to a provider registered later.
 */
import type { MeterProvider } from '@opentelemetry/api';

export interface MeteredInstrumentation {
  setMeterProvider(meterProvider: MeterProvider): void;
}

export const REGISTERED_INSTRUMENTATIONS: MeteredInstrumentation[] = [];
