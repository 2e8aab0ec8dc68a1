/**
 * Per-relay reputation (docs/mesh.md §Knowledge), kept on disk so bad relays stay avoided across runs:
 * circuits built and failed, relays lost, tampering, round-trip EWMA, last seen.
 * `score = (ok + 1) / (ok + failed + 2) × 0.5^tampered`; relays under {@link MIN_SCORE} are not picked.
 * Built and failed counts decay with a half-life of {@link DECAY_HALF_LIFE_MS} (1 h): a relay that stays down
 * reaches a bounded count (about retries per half-life × 1.44) instead of sinking on every retry, and one that
 * comes back is picked again within hours, its successes counting as before. Tampering does not decay.
 * @module
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileDurable } from '../_fs.js';
import { createLogger } from '../_log.js';

const log = createLogger('mmogit:mesh:reputation');
export const MIN_SCORE = 0.2;
/** Most relays remembered (the least recently seen are forgotten first). */
const MAX_RELAYS = 10_000;
const SAVE_DELAY_MS = 500;
/** Half-life of the built and failed counts (ms). */
export const DECAY_HALF_LIFE_MS = 3_600_000;

/** `r` as of `now`: ok and failed decayed since `r.lastSeen`. */
function decayed(r: RelayRecord, now: number): RelayRecord {
  const f = 0.5 ** (Math.max(0, now - r.lastSeen) / DECAY_HALF_LIFE_MS);
  return { ...r, ok: r.ok * f, failed: r.failed * f };
}

/** What is remembered about one relay. */
export interface RelayRecord {
  ok: number;
  failed: number;
  lost: number;
  tampered: number;
  rttMs: number | null;
  lastSeen: number;
}

export function scoreOf(r: RelayRecord | undefined): number {
  if (!r) return 0.5;
  return ((r.ok + 1) / (r.ok + r.failed + 2)) * 0.5 ** r.tampered;
}

/** The reputation table; `path` undefined keeps it in memory only. */
export class Reputation {
  readonly path: string | undefined;
  readonly #records = new Map<string, RelayRecord>();
  #timer: NodeJS.Timeout | undefined;
  #saving: Promise<void> = Promise.resolve();
  readonly #now: () => number;

  private constructor(path: string | undefined, now: () => number) {
    this.path = path;
    this.#now = now;
  }

  /** Loads `path` (a missing or unreadable file is an empty table: reputation is advisory). */
  static async open(path?: string, options: { now?: () => number } = {}): Promise<Reputation> {
    const rep = new Reputation(path, options.now ?? Date.now);
    if (!path) return rep;
    try {
      const data = JSON.parse(await readFile(path, 'utf8')) as {
        version?: number;
        relays?: Record<string, RelayRecord>;
      };
      if (data.version === 1 && data.relays && typeof data.relays === 'object') {
        for (const [onion, r] of Object.entries(data.relays).slice(0, MAX_RELAYS)) {
          if (typeof r?.ok === 'number' && typeof r.failed === 'number' && typeof r.tampered === 'number') {
            rep.#records.set(onion, {
              ok: r.ok,
              failed: r.failed,
              lost: r.lost ?? 0,
              tampered: r.tampered,
              rttMs: typeof r.rttMs === 'number' ? r.rttMs : null,
              lastSeen: r.lastSeen ?? 0,
            });
          }
        }
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        log('ignoring unreadable %s: %s', path, (e as Error).message);
    }
    return rep;
  }

  /** The record as of now (counts decayed). */
  get(onion: string): RelayRecord | undefined {
    const r = this.#records.get(onion);
    return r && decayed(r, this.#now());
  }

  score(onion: string): number {
    return scoreOf(this.get(onion));
  }

  all(): Record<string, RelayRecord & { score: number }> {
    const out: Record<string, RelayRecord & { score: number }> = {};
    const now = this.#now();
    for (const [k, r] of this.#records) {
      const d = decayed(r, now);
      out[k] = { ...d, score: scoreOf(d) };
    }
    return out;
  }

  #touch(onion: string): RelayRecord {
    let r = this.#records.get(onion);
    if (!r) {
      if (this.#records.size >= MAX_RELAYS) {
        let oldest: string | undefined;
        let t = Number.POSITIVE_INFINITY;
        for (const [k, v] of this.#records) if (v.lastSeen < t) [oldest, t] = [k, v.lastSeen];
        if (oldest) this.#records.delete(oldest);
      }
      r = { ok: 0, failed: 0, lost: 0, tampered: 0, rttMs: null, lastSeen: this.#now() };
      this.#records.set(onion, r);
    }
    const now = this.#now();
    const d = decayed(r, now);
    r.ok = d.ok;
    r.failed = d.failed;
    r.lastSeen = now;
    this.#scheduleSave();
    return r;
  }

  built(onions: readonly string[]): void {
    for (const o of onions) this.#touch(o).ok++;
  }

  failed(onion: string): void {
    this.#touch(onion).failed++;
  }

  lost(onion: string): void {
    const r = this.#touch(onion);
    r.lost++;
    r.failed++;
  }

  tampered(onion: string): void {
    this.#touch(onion).tampered++;
  }

  rtt(onion: string, ms: number): void {
    const r = this.#touch(onion);
    r.rttMs = r.rttMs === null ? ms : r.rttMs + (ms - r.rttMs) / 8;
  }

  #scheduleSave(): void {
    if (!this.path || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.save();
    }, SAVE_DELAY_MS);
    this.#timer.unref();
  }

  /** Writes the table now (atomic replace). */
  async save(): Promise<void> {
    const path = this.path;
    if (!path) return;
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const body = `${JSON.stringify({ version: 1, relays: Object.fromEntries(this.#records) }, null, 1)}\n`;
    this.#saving = this.#saving.then(async () => {
      try {
        await mkdir(dirname(path), { recursive: true, mode: 0o700 });
        await writeFileDurable(path, body, { mode: 0o600 });
      } catch (e) {
        log('could not save %s: %s', path, (e as Error).message);
      }
    });
    await this.#saving;
  }
}
