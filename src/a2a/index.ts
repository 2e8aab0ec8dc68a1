/**
 * A2A (Agent2Agent v1.0) over onion services: the signed agent card, the server an agent runs on its onion's
 * port 80 (`agent.start({ a2a: true })`), and a client whose HTTP goes through tor only.
 *
 * @example
 * ```ts
 * import { a2aClient, sendRequest, userMessage } from 'mmogit/a2a';
 * const { client } = await a2aClient(peerOnion, { socksPort: agent.net().tor.socksPort });
 * const task = await client.sendMessage(sendRequest(userMessage('hello')));
 * ```
 * @module
 */
export {
  A2A_JSONRPC_PATH,
  A2A_ONION_PORT,
  a2aBaseUrl,
  buildA2aCard,
  signA2aCard,
  verifyCardForOnion,
} from './card.js';
export {
  a2aClient,
  a2aTargetUrl,
  fetchA2aCard,
  sendRequest,
  socksFetch,
  userMessage,
} from './client.js';
export type { A2aAnswer, A2aTask } from './executor.js';
export type { A2aInboundMessage } from './journal.js';
export { messageContent, PROOF_KEY, ProofChecker, signMessageProof } from './proof.js';
export { type A2aSendOptions, type A2aSendResult, a2aSend } from './send.js';
export { type AgentA2a, startAgentA2a } from './serve.js';
export { type A2aLimits, DEFAULT_A2A_LIMITS } from './server.js';
