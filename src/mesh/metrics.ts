/**
 * Mesh metrics in a prom-client Registry of their own, for the daemon's Prometheus endpoint to merge
 * (`Registry.merge([...])`). Base units, `_total` counters, an `mmogit_mesh_` prefix and bounded labels only
 * (never a relay onion or a target).
 * @module
 */
import { Counter, Gauge, Histogram, Registry } from '../metrics/define.js';

const DETECT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10];

/** The mesh's metric objects and the registry that holds them. */
export class MeshMetrics {
  readonly registry = new Registry();
  readonly circuitsBuilt = new Counter({
    name: 'mmogit_mesh_circuits_built_total',
    help: 'Circuits built',
    registers: [this.registry],
  });
  readonly circuitsFailed = new Counter({
    name: 'mmogit_mesh_circuits_failed_total',
    help: 'Circuit builds that failed, and built circuits that were lost, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly buildSeconds = new Histogram({
    name: 'mmogit_mesh_circuit_build_seconds',
    help: 'Wall time to build a circuit',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly handshakeSeconds = new Histogram({
    name: 'mmogit_mesh_handshake_cpu_seconds',
    help: 'Client CPU time of a circuit build, per hop',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05],
    registers: [this.registry],
  });
  readonly hopRttSeconds = new Histogram({
    name: 'mmogit_mesh_hop_rtt_seconds',
    help: 'Beacon round trip to a hop, by hop position',
    labelNames: ['hop'],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  readonly beaconsLost = new Counter({
    name: 'mmogit_mesh_beacons_lost_total',
    help: 'Beacons unanswered when the next was due',
    registers: [this.registry],
  });
  readonly failovers = new Counter({
    name: 'mmogit_mesh_failovers_total',
    help: 'Stream sets moved to their standby leg',
    registers: [this.registry],
  });
  readonly exitsLost = new Counter({
    name: 'mmogit_mesh_exits_lost_total',
    help: 'Stream sets whose exit was lost',
    registers: [this.registry],
  });
  readonly tampering = new Counter({
    name: 'mmogit_mesh_tampering_total',
    help: 'Cells that failed a layer check',
    registers: [this.registry],
  });
  readonly mttdSeconds = new Histogram({
    name: 'mmogit_mesh_failure_detect_seconds',
    help: 'Time from the last sign of life of a lost leg to its detection (MTTD as this client sees it)',
    buckets: DETECT_BUCKETS,
    registers: [this.registry],
  });
  readonly mttrSeconds = new Histogram({
    name: 'mmogit_mesh_failure_recover_seconds',
    help: 'Time from the detection of a lost leg to streams flowing on the standby (MTTR minus MTTD)',
    buckets: DETECT_BUCKETS,
    registers: [this.registry],
  });
  readonly bytes = new Counter({
    name: 'mmogit_mesh_bytes_total',
    help: 'Link bytes (cells and channel framing), by direction',
    labelNames: ['direction'],
    registers: [this.registry],
  });
  readonly circuitsOpen = new Gauge({
    name: 'mmogit_mesh_circuits_open',
    help: 'Circuits open now',
    registers: [this.registry],
  });
}
