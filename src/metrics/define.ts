/**
 * The one shape every metric definition of ours has: prom-client's configuration without `registers`,
 * registered in the registry of the component that owns it (each component has its own, merged by the
 * daemon's endpoint). prom-client's metric classes are re-exported for the components' field types.
 * @module
 */
import {
  Counter,
  type CounterConfiguration,
  Gauge,
  type GaugeConfiguration,
  Histogram,
  type HistogramConfiguration,
  Registry,
} from 'prom-client';

export { Counter, Gauge, Histogram, Registry };

/** A metric's definition: name, help, bounded label names (and buckets, a scrape-time `collect`). */
export type MetricDef<C> = Omit<C, 'registers'>;

/** Defines metrics registered in `registry` only. */
export interface MetricDefiner {
  counter<T extends string>(def: MetricDef<CounterConfiguration<T>>): Counter<T>;
  gauge<T extends string>(def: MetricDef<GaugeConfiguration<T>>): Gauge<T>;
  histogram<T extends string>(def: MetricDef<HistogramConfiguration<T>>): Histogram<T>;
}

/**
 * @example
 * const define = metricsIn(registry);
 * const sent = define.counter({ name: 'mmogit_x_total', help: 'Xs', labelNames: ['result'] });
 */
export function metricsIn(registry: Registry): MetricDefiner {
  return {
    counter: (def) => new Counter({ ...def, registers: [registry] }),
    gauge: (def) => new Gauge({ ...def, registers: [registry] }),
    histogram: (def) => new Histogram({ ...def, registers: [registry] }),
  };
}
