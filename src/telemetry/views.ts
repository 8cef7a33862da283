import { AggregationType, type ViewOptions } from '@opentelemetry/sdk-metrics';
import { METRICS } from './catalog.ts';

/** One view per catalogue metric: its histogram buckets and its series limit. */
export function buildViews(): ViewOptions[] {
  return Object.values(METRICS).map((spec) => ({
    instrumentName: spec.otelName,
    aggregationCardinalityLimit: spec.cardinalityLimit,
    ...('buckets' in spec && spec.buckets
      ? { aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: [...spec.buckets] } } }
      : {}),
  }));
}
