/**
 * Prometheus metrics of an agent: the registry of metric objects the agent's parts count into
 * ({@link AgentMetrics}) and the bounded HTTP endpoint that serves it ({@link serveMetrics}).
 * @module
 */
export {
  AgentMetrics,
  type AgentMetricsOptions,
  type MetricSources,
  PROBE_RESULTS,
  type ProbeResultLabel,
  reasonLabel,
  TOR_STATES,
  type TorState,
} from './agent-metrics.js';
export {
  METRICS_MAX_CONNECTIONS,
  METRICS_REQUEST_TIMEOUT_MS,
  type MetricsAddress,
  type MetricsServer,
  parseMetricsAddress,
  serveMetrics,
} from './server.js';
