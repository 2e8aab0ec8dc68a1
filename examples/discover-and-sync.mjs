// Three agents: alice and bob advertise the `memory_sync` service in the Kademlia DHT; carol, who knows neither
// of their addresses, discovers them there, syncs memory with each, and then recalls what they remembered.
//
// An advertisement is signed by the agent's key and checked by whoever finds it, so `discover()` only yields
// agents that really hold the advertised .onion. Memory is a git repository of signed entries; `sync()` swaps the
// entries each side lacks (both directions) and verifies every one it receives.
//
//   node examples/discover-and-sync.mjs                       # brings up its own private network
//   MMOGIT_TOR_NETWORK=/tmp/net node examples/discover-and-sync.mjs
import { join } from 'node:path';
import { Agent } from 'mmogit';
import { DEFAULT_ONION_VIRTUAL_PORT, onionMultiaddr, peerIdFromOnion } from 'mmogit/transport';
import { runExample, short, step } from './_example.mjs';

const SERVICE = 'memory_sync';

await runExample('discover-and-sync', async ({ network, tmp, signal }) => {
  const agents = [];
  try {
    const names = ['alice', 'bob', 'carol'];
    for (const name of names) agents.push((await Agent.init({ configDir: join(tmp, name) })).agent);
    const [alice, bob, carol] = agents;
    const nameOf = (onion) => names[agents.findIndex((a) => a.address === onion)] ?? short(onion);

    // 1. Something worth syncing: each agent remembers one thing (signed, committed to its own git repo).
    //    Memory works offline; no network is needed for remember/recall.
    await alice.remember({
      type: 'learning',
      content: 'onion descriptors take ~1 s to upload',
      tags: ['tor'],
    });
    await bob.remember({
      type: 'observation',
      content: 'the DHT answers within a second here',
      tags: ['dht'],
    });
    await carol.remember({ type: 'reflection', content: 'I found my peers without their addresses' });

    // 2. Go online. A DHT needs an entry point: alice starts first and the others bootstrap from her address
    //    (networks made by `mmogit testnet up` also list bootstrap agents of their own, used automatically).
    step(`starting alice (${short(alice.address)})…`);
    await alice.start({ network, signal });
    const viaAlice = onionMultiaddr(
      alice.address,
      DEFAULT_ONION_VIRTUAL_PORT,
      peerIdFromOnion(alice.address).toString(),
    ).toString(); // /onion3/<alice>:4001/p2p/<alice's peer id>
    step('starting bob and carol, bootstrapping from alice…');
    await Promise.all([bob, carol].map((a) => a.start({ network, bootstrap: [viaAlice], signal })));

    // 3. alice and bob advertise the service (re-published in the background until they stop).
    await Promise.all([alice, bob].map((a) => a.advertise([SERVICE], { signal })));
    step(`alice and bob advertise ${SERVICE}`);

    // 4. carol looks it up. Results stream in as they are found and verified; a lookup ends after `timeoutMs`
    //    (or `limit` results), so ask a few times while the DHT is still settling. On a long-lived network she
    //    may also find advertisements of agents that have gone offline since (they expire after their TTL).
    const found = new Map();
    const ours = () => [alice, bob].filter((a) => found.has(a.address)).length;
    for (let round = 1; round <= 4 && ours() < 2; round++) {
      for await (const ad of carol.discover(SERVICE, { signal, timeoutMs: 15_000, limit: 10 })) {
        if (found.has(ad.onion)) continue;
        found.set(ad.onion, ad);
        step(`carol found ${nameOf(ad.onion)} offering ${ad.services.join(', ')} (signature verified)`);
      }
    }
    if (found.size === 0) throw new Error(`carol found no agent offering ${SERVICE}`);

    // 5. Sync with every agent found, all at once: carol gets their memories and they get hers. One that
    //    cannot be reached is skipped (`sync` throws a typed MmogitError, e.g. ERR_SOCKS or ERR_TIMEOUT).
    const synced = await Promise.all(
      [...found.keys()].map(async (onion) => {
        try {
          const r = await carol.sync(onion, { signal, timeoutMs: 20_000 });
          return `carol ⇄ ${nameOf(onion)}: received ${r.received}, sent ${r.sent} entries (${r.ms} ms)`;
        } catch (e) {
          if (signal.aborted) throw e;
          return `carol ⇄ ${nameOf(onion)}: skipped, unreachable (${e.code ?? e.message})`;
        }
      }),
    );

    // 6. carol's memory now holds the others' memories too; `recall` re-verifies each entry's signature.
    const memories = await carol.recall({ kind: 'memory' });
    const fromPeers = memories.filter((m) => m.author !== carol.address);
    if (!memories.every((m) => m.verified)) throw new Error('a synced memory failed verification');
    if (ours() < 2 || fromPeers.length < 2) {
      throw new Error(
        `carol found ${ours()} of alice and bob, and recalls ${fromPeers.length} of their memories`,
      );
    }
    const others = found.size - ours();
    return [
      ...names.map((n, i) => `${n.padEnd(5)} ${agents[i].address}`),
      `discovered by carol: ${[...found.keys()]
        .filter((o) => names.includes(nameOf(o)))
        .map(nameOf)
        .join(', ')}` + (others > 0 ? ` (and ${others} agent(s) from earlier runs)` : ''),
      ...synced,
      `carol recalls ${memories.length} memories (${fromPeers.length} from peers), all verified:`,
      ...memories.map((m) => `  [${m.entry.body.type}] ${m.entry.body.content} — by ${nameOf(m.author)}`),
    ];
  } finally {
    step('stopping the agents…');
    await Promise.all(agents.map((a) => a.close().catch(() => {})));
  }
});
