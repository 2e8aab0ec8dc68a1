// The official MCP SDK client, spawning the real built `mmogit mcp` over stdio (what an MCP host does).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { MMOGIT_BIN } from '../helpers/cli.js';

const BUILT = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface McpSession {
  client: Client;
  /** The SDK's client transport the client is connected over (the server's stdin and stdout). */
  transport: StdioClientTransport;
  /** What the server wrote on stderr so far. */
  stderr(): string;
  close(): Promise<void>;
}

/** Starts `mmogit mcp --config-dir <dir> …extra` and connects the SDK's `Client` to it. */
export async function connectMcp(
  configDir: string,
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<McpSession> {
  if (!existsSync(BUILT)) throw new Error('dist/ is missing: run `npm run build` (npm test does it)');
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [MMOGIT_BIN, 'mcp', '--config-dir', configDir, ...extra],
    env: { ...(process.env as Record<string, string>), ...env },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (d) => {
    stderr += d;
  });
  const client = new Client({ name: 'mmogit-test-host', version: '1.0.0' });
  await client.connect(transport, { timeout: 120_000 });
  return {
    client,
    transport,
    stderr: () => stderr,
    close: () => client.close(),
  };
}

/** The structured content of a tool result (our tools always return an object). */
export function structured<T = Record<string, unknown>>(result: unknown): T {
  return (result as { structuredContent: T }).structuredContent;
}
