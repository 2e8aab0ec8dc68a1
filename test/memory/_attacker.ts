import { deflateRawSync } from 'node:zlib';
import { canonicalBytes } from '../../src/identity/canonical.js';
import type { AgentKey } from '../../src/identity/keys.js';
import { SIGNING_CONTEXTS } from '../../src/identity/signing.js';
import { encodeCommit, encodeTree, MODE_FILE, MODE_TREE, type TreeEntry } from '../../src/memory/_git.js';
import { makeObject, type StoredObject } from '../../src/memory/odb.js';
import { COMMIT_IDENT, type MemoryStore } from '../../src/memory/store.js';
import {
  type SyncOptions,
  SyncQuota,
  type SyncResult,
  syncOverChannel,
} from '../../src/memory/sync/index.js';
import { type ByteChannel, channelFromDuplex } from '../../src/transport/byte-channel.js';
import { socketPair } from './_helpers.js';

/**
 * A malicious sync peer written by hand against the wire format of docs/protocol.md §3 (Sync): it sends what
 * the real sender never would. Each helper is one step of the protocol, so a test composes exactly the attack
 * it needs.
 */

export const PROTO = 'mmogit-sync/2';
export const F = {
  hello: 1,
  ref: 2,
  want: 3,
  have: 4,
  bits: 5,
  pack: 6,
  packEnd: 7,
  result: 8,
  error: 9,
  packInfo: 10,
} as const;

const enc = new TextEncoder();

/** One frame: `u32 BE length ‖ type ‖ payload` (JSON unless bytes are given). */
export function frame(type: number, payload: Uint8Array | unknown): Uint8Array {
  const body = payload instanceof Uint8Array ? payload : enc.encode(JSON.stringify(payload));
  const out = new Uint8Array(5 + body.length);
  new DataView(out.buffer).setUint32(0, body.length + 1);
  out[4] = type;
  out.set(body, 5);
  return out;
}

export interface ReadFrame {
  type: number;
  payload: Uint8Array;
  json: Record<string, unknown>;
}

export async function readFrame(ch: ByteChannel): Promise<ReadFrame> {
  const h = await ch.readExactly(5);
  const len = new DataView(h.buffer, h.byteOffset).getUint32(0);
  const payload = len > 1 ? Uint8Array.from(await ch.readExactly(len - 1)) : new Uint8Array(0);
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(new TextDecoder().decode(payload));
  } catch {}
  return { type: h[4] as number, payload, json };
}

/** The pack stream body (before deflate): per object `type ‖ u32 BE size ‖ content`. */
export function rawPack(objects: readonly StoredObject[]): Buffer {
  const code = { commit: 1, tree: 2, blob: 3 } as const;
  return Buffer.concat(
    objects.flatMap((o) => {
      const h = Buffer.alloc(5);
      h[0] = code[o.type];
      h.writeUInt32BE(o.content.length, 1);
      return [h, Buffer.from(o.content)];
    }),
  );
}

export const entryTreePath = (id: string) => [
  'entries',
  id[0] as string,
  id[1] as string,
  id[2] as string,
  `${id}.json`,
];

/** Builds the trees of `files` (path → blob oid); pushes them on `out`, returns the root tree id. */
export function treeOf(files: readonly { path: string[]; oid: string }[], out: StoredObject[]): string {
  const groups = new Map<string, { path: string[]; oid: string }[]>();
  const entries: TreeEntry[] = [];
  for (const f of files) {
    const [name, ...rest] = f.path as [string, ...string[]];
    if (rest.length === 0) entries.push({ mode: MODE_FILE, name, oid: f.oid });
    else groups.set(name, [...(groups.get(name) ?? []), { path: rest, oid: f.oid }]);
  }
  for (const [name, sub] of groups) entries.push({ mode: MODE_TREE, name, oid: treeOf(sub, out) });
  const t = makeObject('tree', encodeTree(entries));
  out.push(t);
  return t.oid;
}

export interface CommitSpec {
  tree: string;
  parents?: string[];
  time?: number;
  message?: string;
  ident?: string;
}

export function commitObject(c: CommitSpec): StoredObject {
  return makeObject(
    'commit',
    encodeCommit({
      tree: c.tree,
      parents: c.parents ?? [],
      ident: c.ident ?? COMMIT_IDENT,
      time: c.time ?? Math.floor(Date.now() / 1000),
      message: c.message ?? 'remember 1 entry\n',
    }),
  );
}

/** A history of one commit holding `files` (path → bytes): blobs, trees and the commit (last). */
export function history(
  files: readonly [string[], Uint8Array][],
  commit: Omit<CommitSpec, 'tree'> = {},
): { head: string; objects: StoredObject[] } {
  const objects: StoredObject[] = [];
  const blobs = files.map(([path, bytes]) => {
    const b = makeObject('blob', bytes);
    objects.push(b);
    return { path, oid: b.oid };
  });
  const tree = treeOf(blobs, objects);
  const c = commitObject({ ...commit, tree });
  objects.push(c);
  return { head: c.oid, objects };
}

/** The attacker's side of one session: the victim runs the real `syncOverChannel` on the other end. */
export class Attacker {
  nonce = 'ab'.repeat(32);
  victimNonce = '';
  constructor(
    readonly key: AgentKey,
    readonly victim: MemoryStore,
    readonly ch: ByteChannel,
    readonly proto = PROTO,
  ) {}

  send(type: number, payload: Uint8Array | unknown): Promise<void> {
    return this.ch.write(frame(type, payload));
  }

  read(): Promise<ReadFrame> {
    return readFrame(this.ch);
  }

  /** Both HELLOs (ours first, as both real sides do). */
  async hello(extra: Record<string, unknown> = {}): Promise<ReadFrame> {
    await this.send(F.hello, { proto: this.proto, onion: this.key.onion, nonce: this.nonce, ...extra });
    const h = await this.read();
    this.victimNonce = String(h.json.nonce);
    return h;
  }

  /** A REF for `head`, correctly signed for this session. */
  async ref(head: string | null): Promise<void> {
    const statement = canonicalBytes({
      proto: this.proto,
      from: this.key.onion,
      to: this.victim.key.onion,
      nonce: this.victimNonce,
      head,
    });
    const sig = Buffer.from(this.key.sign(SIGNING_CONTEXTS.syncRef, statement)).toString('hex');
    await this.send(F.ref, { head, sig });
  }

  /** Announces and sends `raw` (deflated unless `deflated` is given), then PACK-END. */
  async pack(
    raw: Uint8Array,
    options: { objects: number; rawBytes?: number; deflated?: Uint8Array; chunk?: number },
  ): Promise<void> {
    const z = options.deflated ?? deflateRawSync(raw);
    await this.send(F.packInfo, { objects: options.objects, rawBytes: options.rawBytes ?? raw.length });
    const chunk = options.chunk ?? 1024 * 1024;
    for (let i = 0; i < z.length; i += chunk) await this.send(F.pack, z.subarray(i, i + chunk));
    await this.send(F.packEnd, {});
  }

  /** Answers a victim's send phase: says it needs nothing, then waits for the victim's RESULT wait. */
  async refuseOffer(): Promise<ReadFrame> {
    const ref = await this.read();
    await this.send(F.want, { need: false });
    return ref;
  }
}

/**
 * Runs the victim (as responder unless `role` says otherwise) against `script`, the attacker's side. Returns
 * what the victim's sync did: its result or the error it threw.
 */
export async function againstVictim(
  victim: MemoryStore,
  attacker: AgentKey,
  script: (a: Attacker) => Promise<void>,
  options: Partial<SyncOptions> & { proto?: string } = {},
): Promise<{ result: SyncResult | null; error: unknown; afterScript: unknown }> {
  const [cv, cm, done] = await socketPair();
  const { proto, ...syncOptions } = options;
  const run = syncOverChannel(victim, channelFromDuplex(cv), {
    role: 'responder',
    peer: { publicKey: attacker.publicKey, onion: attacker.onion },
    timeoutMs: 20_000,
    quota: SyncQuota.unlimited(),
    ...syncOptions,
  })
    .then(
      (result) => ({ result, error: null as unknown }),
      (error: unknown) => ({ result: null, error }),
    )
    // As the agent does: the victim's end of the channel closes when its sync is over.
    .finally(() => cv.destroy());
  let afterScript: unknown = null;
  try {
    await script(new Attacker(attacker, victim, channelFromDuplex(cm), proto));
  } catch (e) {
    afterScript = e;
  }
  // The attacker hangs up once its script is done (a victim still waiting then fails with a closed connection).
  cm.destroy();
  const out = await run;
  done();
  return { ...out, afterScript };
}

/** A channel that records every frame the victim sent (what the attacker read). */
export function framesSent(frames: ReadFrame[]): number[] {
  return frames.map((f) => f.type);
}
