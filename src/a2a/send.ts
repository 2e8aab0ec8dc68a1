/**
 * One A2A call as an mmogit agent makes it: fetch and check the card through tor, send a message signed with
 * the agent's key (proof.ts), and return the answer in a flat shape (what `mmogit a2a send` prints and
 * `agent.a2a.send()` returns).
 * @module
 */
import { type Message, type Task, taskStateToJSON } from '@a2a-js/sdk';
import { withTimeout } from '../errors.js';
import type { AgentKey } from '../identity/keys.js';
import { type A2aClientOptions, a2aClient, a2aTargetUrl, sendRequest, userMessage } from './client.js';
import { messageContent, signMessageProof } from './proof.js';

/** Default bound on one {@link a2aSend}, card fetch included. */
export const DEFAULT_A2A_SEND_TIMEOUT_MS = 120_000;

export type A2aSendResult =
  | {
      kind: 'task';
      id: string;
      contextId: string;
      state: string;
      text: string;
      data: unknown[];
      verified: boolean;
    }
  | { kind: 'message'; text: string; data: unknown[]; verified: boolean };

export interface A2aSendOptions extends A2aClientOptions {
  /** A JSON data part besides the text. */
  data?: unknown;
  /** Sign the message with this key (default: the caller's; pass null to send anonymously). */
  signAs?: AgentKey | null;
  signal?: AbortSignal;
}

/** `verified` says whether the receiver's card was checked against its onion key. */
export async function a2aSend(target: string, text: string, options: A2aSendOptions): Promise<A2aSendResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_A2A_SEND_TIMEOUT_MS;
  const signal = withTimeout(options.signal, timeoutMs, `A2A send to ${target}`);
  const { client, verified } = await a2aClient(target, { ...options, timeoutMs });
  let message = userMessage(text, options.data);
  if (options.signAs) message = signMessageProof(message, options.signAs, a2aTargetUrl(target).hostname);
  const result = await client.sendMessage(sendRequest(message), { signal });
  if ('parts' in result) return { kind: 'message', verified, ...messageContent(result as Message) };
  const task = result as Task;
  return {
    kind: 'task',
    id: task.id,
    contextId: task.contextId,
    state: taskStateToJSON(task.status?.state ?? 0),
    verified,
    ...messageContent({ parts: task.artifacts.flatMap((a) => a.parts) }),
  };
}
