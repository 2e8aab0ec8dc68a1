import { a2aTargetUrl } from '../../src/a2a/client.js';
import { a2aSend } from '../../src/a2a/send.js';
import { MmogitError } from '../../src/errors.js';
import { loadIdentity } from '../../src/identity/store.js';
import { parseTimeoutMs } from '../_numbers.js';
import { terminalSafe } from '../_terminal-safe.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { daemonSocksPort } from './_a2a.js';
import { configDirOf } from './_context.js';

const MAX_STDIN_BYTES = 1024 * 1024;

interface A2aSendArgs extends GlobalOptions {
  target: string;
  text?: string;
  stdin?: boolean;
  data?: string;
  verify?: boolean;
  timeout?: string;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_STDIN_BYTES) {
      throw new MmogitError('ERR_TOO_LARGE', `stdin is larger than ${MAX_STDIN_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * `mmogit a2a send <onion|url> <text|--stdin> [--data JSON]` → the task (state, answer) or the agent's message.
 * Signed with this agent's key, so an mmogit receiver knows who sent it.
 */
export default async function a2aSendCommand(args: A2aSendArgs): Promise<CommandResult> {
  const timeoutMs = parseTimeoutMs(args.timeout, 120);
  a2aTargetUrl(args.target); // a target that is neither an onion nor an http(s) URL fails here, before the daemon
  if (args.stdin && args.text !== undefined) {
    // Reading stdin would drop the text silently.
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'give the text as an argument or on --stdin, not both');
  }
  const text = args.stdin ? await readStdin() : (args.text ?? '');
  let data: unknown;
  if (args.data !== undefined) {
    try {
      data = JSON.parse(args.data);
    } catch {
      throw new MmogitError('ERR_INVALID_ARGUMENT', '--data is not JSON');
    }
  }
  if (text === '' && data === undefined) {
    throw new MmogitError('ERR_INVALID_ARGUMENT', 'give a text, --stdin or --data');
  }
  const r = await a2aSend(args.target, text, {
    socksPort: await daemonSocksPort(args),
    timeoutMs,
    signAs: await loadIdentity(configDirOf(args)),
    ...(data !== undefined ? { data } : {}),
    ...(args.verify === false ? { verifyCard: false } : {}),
  });
  // The remote agent's answer: printResult keeps its line breaks and escapes every other control character.
  const answer = r.text || (r.data.length > 0 ? JSON.stringify(r.data) : '');
  return {
    data: r,
    human: r.kind === 'task' ? `${terminalSafe(String(r.state))}${answer ? `: ${answer}` : ''}` : answer,
  };
}
