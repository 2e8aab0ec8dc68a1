/**
 * The torrc lines of a private Tor network, as pure functions of its plan: what every node and client shares,
 * what servers, authorities, bridges and the probe client add. Option meanings: tor(1) and tor's
 * `doc/man/tor.1.txt`; `TestingTorNetwork` relaxes the timing rules so a network of a few loopback tors
 * forms a consensus within seconds (tor's own `chutney` networks use the same options).
 * @module
 */
import { join } from 'node:path';
import type { TestnetAuthority } from './testnet-network.js';
import { torrcQuote } from './torrc.js';

/** The empty regular file used as defaults torrc, config file and GeoIP database. */
export const EMPTY_FILE = 'empty';

/** A server of the network as its torrc needs it. */
export interface ServerNode {
  nickname: string;
  orPort: number;
  dataDir: string;
  /** When this process dies the tor exits too (`__OwningControllerProcess`). */
  ownerPid?: number | undefined;
}

/** Lines every node and client of the network in `dir` shares. */
export function commonLines(dir: string, authorities: readonly TestnetAuthority[]): string[] {
  const empty = torrcQuote(join(dir, EMPTY_FILE));
  return [
    'TestingTorNetwork 1',
    'PathsNeededToBuildCircuits 0.67',
    'TestingDirAuthVoteGuard *',
    'TestingDirAuthVoteExit *',
    'TestingDirAuthVoteHSDir *',
    'TestingMinExitFlagThreshold 0',
    'V3AuthNIntervalsValid 2',
    'ShutdownWaitLength 0',
    // Empty GeoIP files: ~3 s less start-up CPU and ~34 MiB less RSS per tor.
    `GeoIPFile ${empty}`,
    `GeoIPv6File ${empty}`,
    // KIST on loopback gives ~20 ms round trips, Vanilla ~1.5 ms.
    'Schedulers Vanilla',
    ...authorities.map(
      (a) =>
        `DirAuthority ${a.nickname} orport=${a.orPort} no-v2 v3ident=${a.v3ident} 127.0.0.1:${a.dirPort} ${a.fingerprint}`,
    ),
  ];
}

/** What a client of the network needs (`network.json`'s `clientTorrc`). */
export function clientLines(dir: string, authorities: readonly TestnetAuthority[]): string[] {
  return [
    ...commonLines(dir, authorities),
    'TestingClientDownloadInitialDelay 0',
    'TestingClientConsensusDownloadInitialDelay 0',
  ];
}

/** A server's torrc: a non-exit relay on 127.0.0.1 that logs to stdout. */
export function serverLines(
  dir: string,
  authorities: readonly TestnetAuthority[],
  node: ServerNode,
): string[] {
  return [
    ...commonLines(dir, authorities),
    `DataDirectory ${torrcQuote(node.dataDir)}`,
    `Nickname ${node.nickname}`,
    'ContactInfo mmogit-testnet',
    'Address 127.0.0.1',
    `ORPort 127.0.0.1:${node.orPort}`,
    'AssumeReachable 1',
    'SocksPort 0',
    'CookieAuthentication 1',
    'ExitRelay 0',
    'ExitPolicy reject *:*',
    'AuthDirMaxServersPerAddr 0',
    'TestingServerDownloadInitialDelay 0',
    'TestingServerConsensusDownloadInitialDelay 0',
    // stdout goes to <node>/notice.log (a `Log … file` path cannot be quoted in torrc).
    'Log notice stdout',
    ...(node.ownerPid ? [`__OwningControllerProcess ${node.ownerPid}`] : []),
  ];
}

/** What a directory authority adds to its server lines. */
export function authorityLines(dirPort: number): string[] {
  return [
    `DirPort 127.0.0.1:${dirPort}`,
    'AuthoritativeDirectory 1',
    'V3AuthoritativeDirectory 1',
    // 10 s votes with 2 s vote and distribution delays (only valid with TestingTorNetwork).
    'TestingV3AuthInitialVotingInterval 10',
    'TestingV3AuthInitialVoteDelay 2',
    'TestingV3AuthInitialDistDelay 2',
    'V3AuthVotingInterval 10',
    'V3AuthVoteDelay 2',
    'V3AuthDistDelay 2',
    // Without these only authorities get Stable, and onion circuits' second hop finds no node.
    'AuthDirVoteStableGuaranteeMinUptime 0',
    'AuthDirVoteStableGuaranteeMTBF 0',
  ];
}

/** What an obfs4 bridge adds to its server lines (`pt`: the obfs4proxy or lyrebird binary). */
export function bridgeLines(pt: string, ptPort: number): string[] {
  return [
    'BridgeRelay 1',
    // No bridge authority here: clients are given the bridge line directly.
    'PublishServerDescriptor 0',
    `ServerTransportPlugin obfs4 exec ${pt}`,
    `ServerTransportListenAddr obfs4 127.0.0.1:${ptPort}`,
    'ExtORPort auto',
  ];
}

/** The throwaway client that proves the network works: no SOCKS port, owned by this process. */
export function probeLines(clientTorrc: readonly string[], dataDir: string, ownerPid: number): string[] {
  return [
    ...clientTorrc,
    `DataDirectory ${torrcQuote(dataDir)}`,
    'SocksPort 0',
    'ClientOnly 1',
    'Log notice stdout',
    `__OwningControllerProcess ${ownerPid}`,
  ];
}
