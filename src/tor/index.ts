/**
 * Tor: the agent's tor daemon (spawn or attach), its onion service, the control-port client, SOCKS dialing
 * and the built-in private Tor network.
 * @module
 */
export * from './control/index.js';
export {
  type AttachTorOptions,
  attachTor,
  DAEMON_FILES,
  DEFAULT_TOR_ATTACH_TIMEOUT_MS,
  DEFAULT_TOR_START_TIMEOUT_MS,
  DEFAULT_TOR_STOP_TIMEOUT_MS,
  MAX_TOR_RESTARTS,
  parseControlTarget,
  RESTART_WINDOW_MS,
  type StartTorOptions,
  startTor,
  type TorDiedEvent,
  type TorHandle,
  type TorHandleEvents,
  type TorProgress,
  type TorRestartedEvent,
} from './daemon.js';
export {
  DEFAULT_ONION_PUBLISH_TIMEOUT_MS,
  DEFAULT_ONION_VIRTUAL_PORT,
  type OnionHost,
  type OnionService,
  type PublishOnionOptions,
  type PublishTimings,
  publishOnion,
} from './onion-service.js';
export * from './socks.js';
export {
  DEFAULT_TESTNET_AUTHORITIES,
  DEFAULT_TESTNET_RELAYS,
  DEFAULT_TESTNET_TIMEOUT_MS,
  loadNetwork,
  NETWORK_FILE_VERSION,
  type TestnetAuthority,
  type TestnetProcess,
  type TestnetProgress,
  type TestnetRelay,
  type TestnetUpOptions,
  type TorNetworkInfo,
  testnetDown,
  testnetStatus,
  testnetUp,
} from './testnet.js';
export {
  type AgentTorrcOptions,
  bridgeTorrcLines,
  findExecutable,
  findTransportBinaries,
  loadTorrcTemplate,
  PLUGGABLE_TRANSPORTS,
  renderAgentTorrc,
  renderTorrc,
  type TorrcValue,
  torrcQuote,
} from './torrc.js';
