import { a2aTargetUrl, fetchA2aCard } from '../../src/a2a/client.js';
import { parseTimeoutMs } from '../_numbers.js';
import { terminalSafe as t } from '../_terminal-safe.js';
import type { CommandResult, GlobalOptions } from '../output.js';
import { daemonSocksPort } from './_a2a.js';

/** `mmogit a2a card <onion|url>` → `{"url","verified","card"}`; an onion's card must be signed by its key. */
export default async function a2aCard(
  args: GlobalOptions & { target: string; verify?: boolean; timeout?: string },
): Promise<CommandResult> {
  const timeoutMs = parseTimeoutMs(args.timeout, 90);
  a2aTargetUrl(args.target); // a target that is neither an onion nor an http(s) URL fails here, before the daemon
  const { card, verified, url } = await fetchA2aCard(args.target, {
    socksPort: await daemonSocksPort(args),
    timeoutMs,
    ...(args.verify === false ? { verifyCard: false } : {}),
  });
  // Every card field is the remote agent's text: escaped for the terminal.
  const skills = card.skills.map((s) => t(String(s.id))).join(', ') || 'none';
  return {
    data: { url: url.origin, verified, card },
    human: `${t(String(card.name))} (${t(url.host)})${verified ? ' ✓ signed by its onion key' : ''}\n${t(String(card.description))}\nskills: ${skills}\ninterfaces: ${card.supportedInterfaces.map((i) => `${t(String(i.protocolBinding))} ${t(String(i.url))}`).join(', ')}`,
  };
}
