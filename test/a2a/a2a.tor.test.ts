// A2A over onion services on the private Tor network, with clients we did not write: the stock @a2a-js/sdk
// client (its HTTP through tor's SOCKS port) fetches and verifies an mmogit agent's card and gets the task
// result the agent program produced; curl fetches the card through tor; our client calls a plain
// @a2a-js/sdk server (no mmogit code on the server side) published as an onion.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AGENT_CARD_PATH, type AgentCard, type Task, TaskState } from '@a2a-js/sdk';
import {
  ClientFactory,
  ClientFactoryOptions,
  DefaultAgentCardResolver,
  JsonRpcTransportFactory,
} from '@a2a-js/sdk/client';
import { AgentEvent, DefaultRequestHandler, InMemoryTaskStore } from '@a2a-js/sdk/server';
import { agentCardHandler, jsonRpcHandler, UserBuilder } from '@a2a-js/sdk/server/express';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyCardForOnion } from '../../src/a2a/card.js';
import { a2aClient, sendRequest, socksFetch, userMessage } from '../../src/a2a/client.js';
import type { A2aTask } from '../../src/a2a/executor.js';
import { Agent } from '../../src/agent/agent.js';
import { AgentKey } from '../../src/identity/keys.js';
import type { TorHandle } from '../../src/tor/daemon.js';
import { publishOnion } from '../../src/tor/onion-service.js';
import { startTestTor, testNetwork } from '../helpers/tor.js';

let root: string;
let agent: Agent;
let clientTor: TorHandle;
let fetchImpl: typeof fetch;
const tasks: A2aTask[] = [];
const answer = (t: A2aTask) => {
  tasks.push(t);
  void t.complete({ text: `echo: ${t.message.text}`, data: { length: t.message.text.length } });
};

beforeAll(async () => {
  const network = await testNetwork();
  root = await mkdtemp(join(tmpdir(), 'mmogit-a2a-'));
  ({ agent } = await Agent.init({ configDir: join(root, 'agent') }));
  agent.on('a2a-task', answer);
  const [tor] = await Promise.all([
    startTestTor(root, { name: 'client-tor' }),
    agent.start({ network: network.dir, networkBootstrap: false, a2a: { answerWaitMs: 5_000 } }),
  ]);
  clientTor = tor;
  fetchImpl = socksFetch({ socksPort: clientTor.socksPort });
}, 240_000);

afterAll(async () => {
  await agent?.close();
  await clientTor?.stop();
  await rm(root, { recursive: true, force: true });
}, 60_000);

function stockFactory(): ClientFactory {
  return new ClientFactory(
    ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
      transports: [new JsonRpcTransportFactory({ fetchImpl })],
    }),
  );
}

function textOf(task: Task): string[] {
  return task.artifacts
    .flatMap((a) => a.parts)
    .flatMap((p) => (p.content?.$case === 'text' ? [p.content.value] : []));
}

describe('an mmogit agent serving A2A on its onion', () => {
  it('the stock client fetches the card through tor; it verifies against the onion and no other', async () => {
    const card = await new DefaultAgentCardResolver({ fetchImpl }).resolve(`http://${agent.address}`);
    expect(card.supportedInterfaces[0]).toMatchObject({
      url: `http://${agent.address}/a2a/jsonrpc`,
      protocolBinding: 'JSONRPC',
      protocolVersion: '1.0',
    });
    expect(card.skills.map((s) => s.id)).toEqual(['messaging']);
    expect(verifyCardForOnion(card, agent.address)).toEqual({ kid: agent.address });
    expect(() => verifyCardForOnion(card, AgentKey.random().onion)).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_SIGNATURE' }),
    );
    expect(() => verifyCardForOnion({ ...card, name: 'mallory' }, agent.address)).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_SIGNATURE' }),
    );
  }, 120_000);

  it('curl reads the same card through tor’s SOCKS port', async () => {
    // curl's stream gets circuits of its own (no SOCKS credentials, so another isolation than our client's), and
    // a fresh rendezvous on the private network sometimes fails once; tor then answers the SOCKS connect with an
    // error, which curl reports as exit 97 (CURLE_PROXY). Our dialers retry that (dialOnion); so does this, and
    // only that.
    const curl = () =>
      promisify(execFile)(
        'curl',
        [
          '-sf',
          '--max-time',
          '60',
          '--socks5-hostname',
          `127.0.0.1:${clientTor.socksPort}`,
          `http://${agent.address}/${AGENT_CARD_PATH}`,
        ],
        { timeout: 90_000 },
      );
    let stdout = '';
    for (let attempt = 1; ; attempt++) {
      try {
        stdout = (await curl()).stdout;
        break;
      } catch (e) {
        if ((e as { code?: unknown }).code !== 97 || attempt === 3) throw e;
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
    expect(verifyCardForOnion(JSON.parse(stdout), agent.address).kid).toBe(agent.address);
  }, 120_000);

  it('SendMessage from the stock client returns the task result the agent program produced', async () => {
    const card = await new DefaultAgentCardResolver({ fetchImpl }).resolve(`http://${agent.address}`);
    const client = await stockFactory().createFromAgentCard(card);
    const result = (await client.sendMessage(sendRequest(userMessage('hello over A2A')))) as Task;
    expect(result.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(textOf(result)).toEqual(['echo: hello over A2A']);
    expect(tasks.at(-1)?.message).toMatchObject({
      text: 'hello over A2A',
      via: 'a2a',
      verified: false,
      from: null,
    });
    const fetched = await client.getTask({ tenant: '', id: result.id, historyLength: undefined });
    expect(fetched.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
  }, 120_000);

  it('a message the program never answers is kept: the task comes back working and is in the journal', async () => {
    agent.off('a2a-task', answer);
    try {
      const { client, verified } = await a2aClient(agent.address, { socksPort: clientTor.socksPort });
      expect(verified).toBe(true);
      const text = `nobody answers ${randomUUID()}`;
      const result = (await client.sendMessage(sendRequest(userMessage(text)))) as Task;
      expect(result.status?.state).toBe(TaskState.TASK_STATE_WORKING);
      const inbound = await agent.net().a2a!.inbound();
      expect(inbound.find((m) => m.taskId === result.id)).toMatchObject({ text, verified: false });
    } finally {
      agent.on('a2a-task', answer);
    }
  }, 120_000);
});

describe('agent.a2a (the SDK facade, through the agent’s own tor)', () => {
  it('send signs with the agent key: the receiver records the message verified, from the sender’s onion', async () => {
    // The agent calls its own onion: tor builds a full rendezvous circuit to it all the same.
    const r = await agent.a2a.send(agent.address, 'signed by me', { data: { k: 1 } });
    expect(r).toMatchObject({
      kind: 'task',
      state: 'TASK_STATE_COMPLETED',
      text: 'echo: signed by me',
      verified: true,
    });
    expect(tasks.at(-1)?.message).toMatchObject({
      text: 'signed by me',
      verified: true,
      from: agent.address,
      data: [{ k: 1 }],
    });
    const inbound = await agent.a2a.inbound();
    expect(inbound.at(-1)).toMatchObject({ text: 'signed by me', verified: true, from: agent.address });
  }, 120_000);
});

describe('our A2A client against a plain @a2a-js/sdk server behind an onion', () => {
  it('fetches its card and gets its answer, all through tor', async () => {
    const key = AgentKey.random();
    const card = {
      name: 'plain sdk agent',
      description: 'not mmogit',
      supportedInterfaces: [
        { url: `http://${key.onion}/rpc`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
      ],
      version: '1.0.0',
      capabilities: { streaming: false, pushNotifications: false },
      defaultInputModes: ['text/plain'],
      defaultOutputModes: ['text/plain'],
      skills: [{ id: 'shout', name: 'shout', description: 'upper-cases', tags: [] }],
    } as unknown as AgentCard;
    const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), {
      async execute(ctx, bus) {
        const text = ctx.userMessage.parts
          .map((p) => (p.content?.$case === 'text' ? p.content.value : ''))
          .join('');
        bus.publish(
          AgentEvent.message({
            messageId: randomUUID(),
            contextId: ctx.contextId,
            taskId: '',
            role: 2,
            parts: [
              {
                content: { $case: 'text', value: text.toUpperCase() },
                metadata: undefined,
                filename: '',
                mediaType: 'text/plain',
              },
            ],
            metadata: undefined,
            extensions: [],
            referenceTaskIds: [],
          }),
        );
        bus.finished();
      },
      async cancelTask() {},
    });
    const app = express();
    app.use(`/${AGENT_CARD_PATH}`, agentCardHandler({ agentCardProvider: handler }));
    app.use('/rpc', jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const onion = await publishOnion(clientTor, key, {
      targetPort: (server.address() as AddressInfo).port,
      virtualPort: 80,
    });
    try {
      const {
        client,
        card: got,
        verified,
      } = await a2aClient(key.onion, {
        socksPort: clientTor.socksPort,
        verifyCard: false,
      });
      expect(verified).toBe(false);
      expect(got.name).toBe('plain sdk agent');
      const reply = await client.sendMessage(sendRequest(userMessage('quiet please')));
      expect(reply).toMatchObject({ parts: [{ content: { $case: 'text', value: 'QUIET PLEASE' } }] });
      // An unsigned card is refused when verification is asked for.
      await expect(a2aClient(key.onion, { socksPort: clientTor.socksPort })).rejects.toMatchObject({
        code: 'ERR_BAD_SIGNATURE',
      });
    } finally {
      await onion.remove();
      server.close();
    }
  }, 180_000);
});
