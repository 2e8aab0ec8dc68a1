/**
 * Path selection (docs/mesh.md §Path selection): an exit that allows the target, then guard and middles drawn
 * with weight `score × 1 / (1 + rtt_ms / 50)`; no relay twice, no two relays of one declared family (both must
 * name each other, as tor's MyFamily), relays under the minimum score never. A standby path shares the exit
 * and avoids every other relay of the primary.
 * @module
 */
import { randomInt } from 'node:crypto';
import type { RelayInfo } from './circuit.js';
import { MeshError } from './errors.js';
import { allows, type Target } from './exit-policy.js';
import { MIN_SCORE, type Reputation } from './reputation.js';

/** Whether `a` and `b` declare each other as family. */
export function sameFamily(a: RelayInfo, b: RelayInfo): boolean {
  return !!a.family?.includes(b.onion) && !!b.family?.includes(a.onion);
}

/** Whether `relay` may exit to `target`; a relay whose policy is unknown may (the exit's refusal will tell). */
export function mayExit(relay: RelayInfo, target: Target | undefined, refused: ReadonlySet<string>): boolean {
  if (target && refused.has(`${relay.onion} ${target.host}:${target.port}`)) return false;
  if (!target || !relay.exitPolicy) return true;
  return allows(relay.exitPolicy, target);
}

export interface PathRequest {
  hops: number;
  target?: Target | undefined;
  /** Use this exit (a standby path). */
  exit?: RelayInfo | undefined;
  /** Onions not to use (another leg's, failed ones). */
  avoid?: readonly string[];
  /** `relay target` pairs the exit refused. */
  refused?: ReadonlySet<string>;
  /** Uniform integer in [0, n) (tests); default crypto `randomInt`. */
  random?: (n: number) => number;
}

function weight(r: RelayInfo, rep: Reputation): number {
  const rtt = rep.get(r.onion)?.rttMs ?? 50;
  return rep.score(r.onion) / (1 + rtt / 50);
}

function draw(list: RelayInfo[], rep: Reputation, random: (n: number) => number): RelayInfo {
  const weights = list.map((r) => Math.max(1, Math.round(weight(r, rep) * 1_000_000)));
  const total = weights.reduce((a, b) => a + b, 0);
  let x = random(total);
  for (let i = 0; i < list.length; i++) {
    x -= weights[i] as number;
    if (x < 0) return list[i] as RelayInfo;
  }
  return list[list.length - 1] as RelayInfo;
}

/**
 * Picks a path of `hops` relays, the exit last. Throws `no-path` when the relays cannot satisfy it.
 * @example choosePath(relays, rep, { hops: 3, target: parseTarget('127.0.0.1:8080') })
 */
export function choosePath(relays: readonly RelayInfo[], rep: Reputation, req: PathRequest): RelayInfo[] {
  const random = req.random ?? ((n: number) => randomInt(0, Math.max(1, n)));
  const avoid = new Set(req.avoid ?? []);
  const refused = req.refused ?? new Set<string>();
  const usable = relays.filter((r) => !avoid.has(r.onion) && rep.score(r.onion) >= MIN_SCORE);
  let exit = req.exit;
  if (!exit) {
    const exits = usable.filter((r) => mayExit(r, req.target, refused));
    // prefer exits whose policy is known to allow the target
    const known = exits.filter((r) => r.exitPolicy);
    if (exits.length === 0) throw new MeshError('no-path', 'no usable relay may exit to that target');
    exit = draw(known.length > 0 ? known : exits, rep, random);
  }
  const path: RelayInfo[] = [exit];
  for (let i = 1; i < req.hops; i++) {
    const choices = usable.filter((r) => !path.some((p) => p.onion === r.onion || sameFamily(p, r)));
    if (choices.length === 0) {
      throw new MeshError(
        'no-path',
        `need ${req.hops} distinct relays (family respected), found ${path.length}`,
        {
          details: { hops: req.hops, usable: usable.length },
        },
      );
    }
    path.unshift(draw(choices, rep, random));
  }
  return path;
}
