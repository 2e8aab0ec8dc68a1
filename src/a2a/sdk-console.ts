/**
 * The `@a2a-js/sdk` server logs with `console.*` straight from request handling: a stack trace for every request
 * with an unsupported `A2A-Version` and for every streaming call, a line for each unknown `referenceTaskIds`
 * entry, and so on, with caller-chosen text such as the request id in it. An unauthenticated caller could flood
 * the daemon's log (`daemon.log` is its stderr) and forge lines in it. While a request of ours is in the SDK's
 * hands, those calls go to our debug logger (`DEBUG=mmogit:a2a`) instead, one escaped and shortened line each;
 * outside that scope (and in the agent program's task handler, run through {@link outsideSdkScope}) `console`
 * behaves as always.
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { format } from 'node:util';
import { createLogger } from '../_log.js';

const log = createLogger('mmogit:a2a');
const scope = new AsyncLocalStorage<boolean>();
let routed = false;

/** Controls, format characters, separators and lone surrogates: a terminal acts on them (or they reorder text). */
const UNSAFE_CHARS = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;
const MAX_LINE = 300;

/** The SDK's console arguments as one short line, every unsafe character escaped; errors without their stack. */
export function sdkLogLine(args: unknown[]): string {
  const text = format(...args.map((a) => (a instanceof Error ? `${a.name}: ${a.message}` : a)));
  const cut = text.length > MAX_LINE ? `${text.slice(0, MAX_LINE)}…` : text;
  return cut.replace(UNSAFE_CHARS, (c) => `\\u{${(c.codePointAt(0) as number).toString(16)}}`);
}

/** Installs the routing once per process (a pass-through outside the scope). */
export function routeSdkConsole(): void {
  if (routed) return;
  routed = true;
  for (const level of ['error', 'warn', 'info', 'log', 'debug'] as const) {
    const original = console[level];
    console[level] = (...args: unknown[]) => {
      if (scope.getStore() === true) log('sdk %s: %s', level, sdkLogLine(args));
      else original.apply(console, args);
    };
  }
}

/** Runs `fn` (and everything it starts) with the SDK's console output routed to the debug logger. */
export function inSdkScope<T>(fn: () => T): T {
  return scope.run(true, fn);
}

/** Runs `fn` outside the scope: the agent program's own `console` output stays its own. */
export function outsideSdkScope<T>(fn: () => T): T {
  return scope.exit(fn);
}
