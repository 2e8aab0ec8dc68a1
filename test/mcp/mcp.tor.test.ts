// Two agents on the private Tor network, each driven only through `mmogit mcp` by the official MCP client:
// A's tools send messages (text, and structured ones to a contact alias), B's tools read them (verified, same
// text and body), B's host hears of each through a resources/updated notification, and a read_inbox wait
// returns as soon as a message lands.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { testNetwork } from '../helpers/tor.js';
import { connectMcp, type McpSession, structured } from './_client.js';

let root: string;
let network: string;
const homes = { a: '', b: '' };
const onions = { a: '', b: '' };
let a: McpSession;
let b: McpSession;
const updates: string[] = [];

interface InboxPage {
  messages: { id: string; from: string; text: string; verified: boolean }[];
  next_cursor: string | null;
}

beforeAll(async () => {
  network = (await testNetwork()).dir;
  root = await mkdtemp(join(tmpdir(), 'mmogit-mcp-tor-'));
  for (const name of ['a', 'b'] as const) {
    homes[name] = join(root, name);
    const r = await runCli(['init', '--json', '--config-dir', homes[name]]);
    onions[name] = r.json<{ onion: string }>().onion;
  }
  // B's daemon is started by the CLI; A's by `mmogit mcp --start` itself.
  const started = await runCli(['tor', 'start', '--network', network, '--json', '--config-dir', homes.b], {
    timeoutMs: 150_000,
  });
  expect(started.exitCode, started.stderr).toBe(0);
  a = await connectMcp(homes.a, ['--start', '--network', network]);
  b = await connectMcp(homes.b);
  b.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
    updates.push(n.params.uri);
  });
}, 300_000);

afterAll(async () => {
  await a?.close();
  await b?.close();
  for (const home of [homes.a, homes.b]) {
    if (home) await runCli(['tor', 'stop', '--config-dir', home]).catch(() => {});
  }
  await rm(root, { recursive: true, force: true });
}, 120_000);

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('mmogit mcp between two agents over Tor', () => {
  it('--start brought A’s daemon up; whoami shows both agents running', async () => {
    expect(a.stderr()).toContain('starting the agent daemon');
    for (const [s, onion] of [
      [a, onions.a],
      [b, onions.b],
    ] as const) {
      const r = await s.client.callTool({ name: 'whoami', arguments: {} });
      expect(structured(r)).toMatchObject({ onion, daemon: { running: true, ready: true } });
    }
  });

  it('A sends, B is notified through its resource subscription and reads the same verified text', async () => {
    await b.client.subscribeResource({ uri: 'mmogit://inbox' });
    const empty = structured<InboxPage>(await b.client.callTool({ name: 'read_inbox', arguments: {} }));
    expect(empty.messages).toEqual([]);

    const text = `hello from A over MCP ${Date.now()}`;
    const sent = await a.client.callTool(
      { name: 'send_message', arguments: { peer: onions.b, text } },
      undefined,
      { timeout: 150_000 },
    );
    expect(sent.isError, JSON.stringify(sent)).toBeFalsy();
    expect(structured(sent)).toMatchObject({ status: 'delivered' });

    await until('resources/updated', () => updates.includes('mmogit://inbox'), 15_000);
    const page = structured<InboxPage>(await b.client.callTool({ name: 'read_inbox', arguments: {} }));
    expect(page.messages).toHaveLength(1);
    expect(page.messages[0]).toMatchObject({
      id: (structured(sent) as { id: string }).id,
      from: onions.a,
      text,
      verified: true,
    });
    const resource = await b.client.readResource({ uri: 'mmogit://inbox' });
    const shown = JSON.parse((resource.contents[0] as { text: string }).text) as InboxPage;
    expect(shown.messages.map((m) => m.text)).toEqual([text]);

    // The cursor: nothing newer yet; a long-poll returns as soon as A's next message lands.
    const cursor = page.next_cursor!;
    const none = structured<InboxPage>(
      await b.client.callTool({ name: 'read_inbox', arguments: { cursor } }),
    );
    expect(none).toEqual({ messages: [], next_cursor: cursor });
    const waiting = b.client.callTool(
      { name: 'read_inbox', arguments: { cursor, wait_seconds: 120 } },
      undefined,
      {
        timeout: 150_000,
      },
    );
    const second = `second ${Date.now()}`;
    const started = Date.now();
    await a.client.callTool(
      { name: 'send_message', arguments: { peer: onions.b, text: second } },
      undefined,
      {
        timeout: 150_000,
      },
    );
    const woke = structured<InboxPage>(await waiting);
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(woke.messages.map((m) => [m.text, m.verified, m.from])).toEqual([[second, true, onions.a]]);
    expect(updates.filter((u) => u === 'mmogit://inbox').length).toBeGreaterThanOrEqual(1);
  }, 300_000);

  it('structured messages: A proposes a task to a contact alias, B answers in the thread, both verified', async () => {
    const added = await a.client.callTool({
      name: 'contacts',
      arguments: { action: 'add', alias: 'bob', onion: onions.b },
    });
    expect(added.isError, JSON.stringify(added)).toBeFalsy();
    const body = { task: 'sum', args: [1, 2, 3], nested: { ok: true, note: null } };
    const proposal = await a.client.callTool(
      {
        name: 'send_message',
        arguments: { peer: 'bob', type: 'task-proposal', body, meta: { priority: 'high' } },
      },
      undefined,
      { timeout: 150_000 },
    );
    expect(proposal.isError, JSON.stringify(proposal)).toBeFalsy();
    const proposalId = structured<{ id: string }>(proposal).id;

    const got = structured<{ messages: Record<string, unknown>[] }>(
      await b.client.callTool(
        { name: 'read_inbox', arguments: { type: 'task-proposal', wait_seconds: 60 } },
        undefined,
        {
          timeout: 90_000,
        },
      ),
    );
    expect(got.messages).toHaveLength(1);
    expect(got.messages[0]).toMatchObject({
      id: proposalId,
      from: onions.a,
      type: 'task-proposal',
      body,
      meta: { priority: 'high' },
      verified: true,
    });
    const thread = got.messages[0]!.thread as string;

    const answer = await b.client.callTool(
      {
        name: 'send_message',
        arguments: { peer: onions.a, type: 'task-result', thread, reply_to: proposalId, body: { sum: 6 } },
      },
      undefined,
      { timeout: 150_000 },
    );
    expect(answer.isError, JSON.stringify(answer)).toBeFalsy();
    const replies = structured<{ messages: Record<string, unknown>[] }>(
      await a.client.callTool(
        { name: 'read_inbox', arguments: { thread, from: onions.b, wait_seconds: 60 } },
        undefined,
        {
          timeout: 90_000,
        },
      ),
    );
    expect(replies.messages.map((m) => [m.type, m.replyTo, m.body, m.verified])).toEqual([
      ['task-result', proposalId, { sum: 6 }, true],
    ]);
  }, 400_000);

  it('ping_peer reaches B with a verified identity over tor', async () => {
    const r = await a.client.callTool({ name: 'ping_peer', arguments: { peer: onions.b } }, undefined, {
      timeout: 150_000,
    });
    expect(structured(r)).toMatchObject({ peer: { onion: onions.b }, transport: 'tor' });
  }, 200_000);
});
