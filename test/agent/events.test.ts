// The public emitters are typed: a listener's argument has the event's type, an unknown event or a wrong
// listener does not compile (checked by `tsc -p tsconfig.test.json`, which npm test runs), and the agent's
// runtime reaches the agent's listeners through the `emit` it is handed.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { Agent } from '../../src/agent/agent.js';
import type { RuntimeEvent } from '../../src/agent/agent-events.js';
import type { Messenger } from '../../src/agent/messaging.js';
import type { DeliveredEvent, QueuedEvent, ReceivedMessage } from '../../src/agent/messaging-types.js';
import type { MmogitError } from '../../src/errors.js';
import { AgentKey } from '../../src/identity/keys.js';
import { Agent as AgentClass } from '../../src/index.js';

describe('typed events', () => {
  it('Agent and Messenger listeners get typed payloads', () => {
    const onMessage = (agent: Agent) =>
      agent.on('message', (m) => {
        expectTypeOf(m).toEqualTypeOf<ReceivedMessage>();
      });
    const onOthers = (agent: Agent) => {
      agent.on('delivered', (e) => expectTypeOf(e).toEqualTypeOf<DeliveredEvent>());
      agent.on('queued', (e) => expectTypeOf(e).toEqualTypeOf<QueuedEvent>());
      agent.on('event', (e) => expectTypeOf(e).toEqualTypeOf<RuntimeEvent>());
      // @ts-expect-error: not an agent event
      agent.on('nonsense', () => {});
    };
    const onMessenger = (m: Messenger) => {
      m.on('message', (msg) => expectTypeOf(msg).toEqualTypeOf<ReceivedMessage>());
      m.on('error', (e) => expectTypeOf(e).toEqualTypeOf<MmogitError>());
      // @ts-expect-error: a message listener does not take a number
      m.on('message', (n: number) => n);
    };
    expect([onMessage, onOthers, onMessenger].every((f) => typeof f === 'function')).toBe(true);
  });

  it('an Agent emits what its listeners expect', async () => {
    const configDir = await mkdtemp(join(tmpdir(), 'mmogit-events-'));
    try {
      const { agent } = await AgentClass.init({ configDir, mnemonic: AgentKey.generate().mnemonic });
      const got: RuntimeEvent[] = [];
      agent.on('event', (e) => got.push(e));
      agent.emit('event', { type: 'test', detail: 'typed' });
      expect(got).toEqual([{ type: 'test', detail: 'typed' }]);
      await agent.close();
    } finally {
      await rm(configDir, { recursive: true, force: true });
    }
  });
});
