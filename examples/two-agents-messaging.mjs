// Two agents, alice and bob, on the private Tor network exchange messages.
//
// Each agent has its own identity (an Ed25519 key whose public half *is* its .onion address), its own tor and
// its own onion service. A message travels over tor inside a hybrid post-quantum channel (X25519 + ML-KEM-768),
// is signed by its sender and is acknowledged by the receiver: `send()` resolves `delivered` only once the
// peer has stored it.
//
//   node examples/two-agents-messaging.mjs                       # brings up its own private network
//   MMOGIT_TOR_NETWORK=/tmp/net node examples/two-agents-messaging.mjs
import { join } from 'node:path';
import { Agent } from 'mmogit';
import { runExample, short, step, waitFor } from './_example.mjs';

await runExample('two-agents-messaging', async ({ network, tmp, signal }) => {
  const agents = [];
  try {
    // 1. Identities. `Agent.init` writes a new key (and an empty git memory) into the config dir; it returns
    //    the 24-word recovery phrase too, which a real application would show to its user once.
    const { agent: alice } = await Agent.init({ configDir: join(tmp, 'alice') });
    const { agent: bob } = await Agent.init({ configDir: join(tmp, 'bob') });
    agents.push(alice, bob);

    // Incoming messages arrive as events (and stay in `inbox()`); each one's signature has been checked.
    const inboxes = { alice: [], bob: [] };
    alice.on('message', (m) => inboxes.alice.push(m));
    bob.on('message', (m) => inboxes.bob.push(m));

    // 2. Go online: each agent starts its own tor on the private network and publishes its onion service.
    step(`starting alice (${short(alice.address)}) and bob (${short(bob.address)})…`);
    await Promise.all(agents.map((a) => a.start({ network, signal })));

    // 3. alice → bob. `connect` is optional: it opens the channel and tells which crypto suite protects it.
    const hello = 'hello bob, this came through two onion services';
    const link = await alice.connect(bob.address, { signal });
    step(`alice reached bob over ${link.transport} (${link.suite}) in ${Math.round(link.rttMs)} ms`);
    const sent = await alice.send(bob.address, hello, { signal });
    await waitFor(() => inboxes.bob.length > 0, 'bob waiting for alice’s message', { signal });

    // 4. bob answers, to the sender the channel authenticated.
    const fromAlice = inboxes.bob[0];
    const reply = `hi alice, got "${fromAlice.text}"`;
    const answered = await bob.send(fromAlice.from, reply, { signal });
    await waitFor(() => inboxes.alice.length > 0, 'alice waiting for bob’s reply', { signal });

    // 5. What arrived. `inbox()` re-reads the stored messages and verifies each signature again.
    const bobInbox = await bob.inbox();
    const aliceInbox = await alice.inbox();
    const got = [...bobInbox.map((m) => ['bob', m]), ...aliceInbox.map((m) => ['alice', m])];
    if (sent.status !== 'delivered' || answered.status !== 'delivered') {
      throw new Error(`a message was only queued (alice→bob ${sent.status}, bob→alice ${answered.status})`);
    }
    if (!got.every(([, m]) => m.verified)) throw new Error('a received message failed verification');
    return [
      `alice ${alice.address}`,
      `bob   ${bob.address}`,
      `channel: ${link.suite} over ${link.transport}`,
      `alice → bob: ${sent.status}`,
      `bob → alice: ${answered.status}`,
      ...got.map(
        ([who, m]) =>
          `${who} received from ${m.from === alice.address ? 'alice' : 'bob'}: "${m.text}" (signature ${m.verified ? 'verified' : 'BAD'})`,
      ),
    ];
  } finally {
    // 6. Stop each agent's tor and libp2p node and close its memory (also when something above failed).
    step('stopping the agents…');
    await Promise.all(agents.map((a) => a.close().catch(() => {})));
  }
});
