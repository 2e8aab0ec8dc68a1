/**
 * The durable record of messages received over A2A: one JSON line each in `<configDir>/a2a-inbound.jsonl`,
 * appended and fsynced before the A2A server answers, so a message a client was told is accepted survives a
 * crash even when the agent program never answers it.
 * @module
 */
import { open, readFile } from 'node:fs/promises';
import { MmogitError } from '../errors.js';

/** A message that reached this agent over A2A. */
export interface A2aInboundMessage {
  via: 'a2a';
  taskId: string;
  contextId: string;
  messageId: string;
  /** The text parts, joined by newlines ('' when there are none). */
  text: string;
  /** The data parts (A2A `data`), in order. */
  data: unknown[];
  /** When this agent accepted it (ISO 8601). */
  receivedAt: string;
  /**
   * The sender's onion when it proved an mmogit key (proof.ts); null otherwise. A2A over an onion service gives
   * the server no address or key of its caller, so an A2A message is unauthenticated by default.
   */
  from: string | null;
  verified: boolean;
}

/** A journal file larger than this stops accepting (the A2A server then refuses new messages). */
export const MAX_JOURNAL_BYTES = 64 * 1024 * 1024;

export class A2aJournal {
  private size = -1;
  private tail: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  /** Appends `m` and fsyncs; resolves once it is durable. Appends are serialised. */
  append(m: A2aInboundMessage): Promise<void> {
    const line = `${JSON.stringify(m)}\n`;
    // Bytes, not UTF-16 units: a line of non-ASCII text is up to three times its `length` on disk.
    const bytes = Buffer.byteLength(line);
    const run = this.tail.then(async () => {
      const fh = await open(this.path, 'a', 0o600);
      try {
        if (this.size < 0) this.size = (await fh.stat()).size;
        if (this.size + bytes > MAX_JOURNAL_BYTES) {
          throw new MmogitError('ERR_TOO_LARGE', 'the A2A inbound journal is full');
        }
        await fh.write(line);
        await fh.sync();
        this.size += bytes;
      } finally {
        await fh.close();
      }
    });
    this.tail = run.catch(() => {});
    return run;
  }

  /** Every recorded message, oldest first (a torn last line from a crash is skipped). */
  async list(): Promise<A2aInboundMessage[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch {
      return [];
    }
    const out: A2aInboundMessage[] = [];
    for (const line of text.split('\n')) {
      if (line === '') continue;
      try {
        out.push(JSON.parse(line) as A2aInboundMessage);
      } catch {
        // only the last line can be torn (appends are whole lines, fsynced one by one)
      }
    }
    return out;
  }
}
