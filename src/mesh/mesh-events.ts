/**
 * The typed events of a {@link Mesh} (mesh.ts) and the clock they are stamped with; shared by the mesh and its
 * leg builder (leg-builder.ts).
 * @module
 */
import type { MeshError } from './errors.js';

/** Epoch milliseconds with sub-millisecond precision (comparable across processes on one host). */
export function nowEpochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Typed events of a Mesh. Times are {@link nowEpochMs}. */
export interface MeshEvents {
  'circuit:built': [
    { serial: number; path: string[]; role: 'primary' | 'standby'; ms: number; cpuMs: number },
  ];
  'circuit:failed': [{ serial?: number; error: MeshError; hop?: number; relay?: string; at: number }];
  'circuit:switched': [{ from: number; to: number; detectedAt: number; switchedAt: number }];
  'stream:recovered': [{ at: number; detectedAt: number }];
  'exit:lost': [{ exit: string; error: MeshError; at: number }];
  /** A standby build for the set to `exit` failed; the next try is in `inMs`. */
  'standby:retry': [{ exit: string; error: MeshError; inMs: number; at: number }];
  tampering: [{ relays: string[]; at: number }];
}
