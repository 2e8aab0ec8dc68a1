import { MmogitError } from '../../errors.js';
import { SIGNING_CONTEXTS, verifySignature } from '../../identity/signing.js';
import {
  decodeHave,
  decodePackEnd,
  decodePackInfo,
  decodeRef,
  frameName,
  type PackInfo,
  protocolError,
  T,
} from './frames.js';
import { integrate } from './integrate.js';
import { MAX_SYNC_OBJECTS, MAX_SYNC_PACK_BYTES } from './limits.js';
import { answerHave } from './negotiate.js';
import { refStatement } from './statement.js';
import type { PhaseContext } from './types.js';
import { checkAnnounced, PackUnpacker } from './unpack.js';
import { IncomingCheck } from './verify.js';

/**
 * The receiving phase: check the peer's signed ref, say whether we need it, answer its negotiation from main's
 * history only, take the announced pack as a stream (checked object by object, written to a pack file that
 * stays invisible until everything passed), then integrate. Returns the number of new entries.
 * @module
 */

/** Most commit ids a peer may ask about in one sync. */
const MAX_HAVE_TOTAL = 4 * MAX_SYNC_OBJECTS;

export async function receivePhase(ctx: PhaseContext): Promise<number> {
  const { port, wire, peer } = ctx;
  const ref = decodeRef(await wire.expect(T.ref));
  const statement = refStatement(peer.onion, ctx.me, ctx.nonce, ref.head);
  if (!verifySignature(SIGNING_CONTEXTS.syncRef, statement, Buffer.from(ref.sig, 'hex'), peer.publicKey)) {
    throw new MmogitError('ERR_BAD_SIGNATURE', 'peer ref signature does not verify');
  }
  const main = await port.mainHistory();
  const need = ref.head !== null && !main.has(ref.head);
  await wire.send(T.want, { need });
  let entries = 0;
  if (need && ref.head) entries = await receivePack(ctx, ref.head, main);
  const head = await integrate(ctx, ref.head);
  await wire.send(T.result, { head });
  return entries;
}

async function receivePack(ctx: PhaseContext, head: string, main: ReadonlySet<string>): Promise<number> {
  const { port, wire, options, lease } = ctx;
  let asked = 0;
  let info: PackInfo;
  for (;;) {
    const f = await wire.recv();
    if (f.type === T.have) {
      const ids = decodeHave(f.payload);
      asked += ids.length;
      if (asked > MAX_HAVE_TOTAL) throw protocolError('too many have queries');
      await wire.send(T.bits, answerHave(ids, main));
    } else if (f.type === T.packInfo) {
      info = decodePackInfo(f.payload);
      break;
    } else {
      throw protocolError(`unexpected ${frameName(f.type)}`);
    }
  }
  ctx.progress({ stage: 'negotiate', direction: 'receive', commits: asked });
  checkAnnounced(info);
  const max = Math.min(options.maxPackBytes ?? MAX_SYNC_PACK_BYTES, MAX_SYNC_PACK_BYTES);
  const check = new IncomingCheck({
    acceptAuthor: options.acceptAuthor,
    now: (options.now ?? Date.now)(),
    onEntry: () => lease.chargeEntries(1),
  });
  const pack = port.receivePack(info.objects);
  const unpacker = new PackUnpacker(info, (type, content) => pack.add(check.add(type, content)));
  try {
    let total = 0;
    for (;;) {
      const f = await wire.recv();
      if (f.type === T.pack) {
        total += f.payload.length;
        if (total > max) {
          throw new MmogitError('ERR_TOO_LARGE', `peer sent more than ${max} bytes of pack`, {
            details: { limit: max },
          });
        }
        lease.chargeBytes(f.payload.length);
        await unpacker.push(f.payload);
        await pack.drain();
        await check.backpressure();
        ctx.progress({ stage: 'receive', bytes: total });
      } else if (f.type === T.packEnd) {
        decodePackEnd(f.payload);
        break;
      } else {
        throw protocolError(`unexpected ${frameName(f.type)} in a pack`);
      }
    }
    await unpacker.end();
    await check.checkHistory(port, head, main);
    await check.signatures();
    ctx.progress({ stage: 'verify', objects: info.objects, entries: check.entries });
    // Everything checked: publish the pack. No ref has moved yet, so a crash here leaves only complete,
    // unreferenced objects.
    await pack.finish();
  } catch (e) {
    unpacker.destroy();
    await pack.abort();
    throw e;
  }
  return check.entries;
}
