/**
 * Our tor control-port client (control-spec), shaped like stem: socket framing ({@link ControlSocket}),
 * pure reply/event parsers ({@link ReplyParser}, {@link parseEvent}) and the {@link TorController}.
 * See docs/decisions.md for why this is ours and not granax.
 * @module
 */
export type { AbortOptions } from '../../_async.js';
export { quote, splitArgs, type Token, tokenize } from './_strings.js';
export {
  type AddOnionRequest,
  type AddOnionResult,
  type AuthenticateOptions,
  type AuthMethod,
  type BootstrapStatus,
  DEFAULT_BOOTSTRAP_TIMEOUT_MS,
  type OnionPort,
  type ProtocolInfo,
  TorController,
  type TorSignal,
  type WaitForBootstrapOptions,
} from './controller.js';
export { TorAuthError, TorControlError, type TorControlErrorCode } from './errors.js';
export {
  type CircEvent,
  type HsDescEvent,
  PARSED_EVENTS,
  parseEvent,
  type StatusEvent,
  type StreamEvent,
  type TorEvent,
  type UnknownEvent,
} from './events.js';
export { readControlPortFile } from './port-file.js';
export {
  type ControlReply,
  isOk,
  keyValues,
  MAX_REPLY_LINE,
  MAX_REPLY_SIZE,
  parseReplies,
  type ReplyLine,
  ReplyParser,
} from './reply.js';
export {
  ControlSocket,
  type ControlTarget,
  DEFAULT_COMMAND_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
} from './socket.js';
