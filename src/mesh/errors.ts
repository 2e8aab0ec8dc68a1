import { MmogitError, type MmogitErrorOptions } from '../errors.js';
import type { Reason } from './_wire.js';

/**
 * Why a mesh operation failed (`details.reason` of a {@link MeshError}): a wire reason (docs/protocol.md §8.7)
 * or one of the client's own:
 * - `exit-lost`: the exit of a stream's set died; its open streams cannot continue (new ones use a new exit);
 * - `no-path`: not enough usable relays for the requested hops (diversity, family, exit policy, reputation);
 * - `build-failed`: every attempt to build a circuit failed;
 * - `closed`: the mesh or circuit was closed locally.
 */
export type MeshFailure = Reason | 'exit-lost' | 'no-path' | 'build-failed';

/**
 * A mesh failure: code `ERR_MESH` (network), `ERR_MESH_EXIT_REFUSED` when the exit's policy refused the target,
 * or `ERR_BAD_FRAME` (security) when a layer failed authentication (`tampered`). `hop` is the 1-based hop that
 * reported it, when known.
 *
 * @example
 * ```ts
 * try { await mesh.connect('127.0.0.1:22') } catch (e) {
 *   if (e instanceof MeshError && e.reason === 'exit-policy') …
 * }
 * ```
 */
export class MeshError extends MmogitError {
  readonly reason: MeshFailure;

  constructor(reason: MeshFailure, message: string, options: MmogitErrorOptions & { hop?: number } = {}) {
    super(
      reason === 'exit-policy'
        ? 'ERR_MESH_EXIT_REFUSED'
        : reason === 'tampered'
          ? 'ERR_BAD_FRAME'
          : 'ERR_MESH',
      `mesh: ${message}`,
      {
        cause: options.cause,
        details: { ...options.details, reason, ...(options.hop !== undefined ? { hop: options.hop } : {}) },
      },
    );
    this.reason = reason;
  }
}
