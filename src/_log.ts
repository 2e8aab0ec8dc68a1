/**
 * A tiny namespaced debug logger (`mmogit:transport`, `mmogit:tor:control`, …). Writes to stderr only when
 * `process.env.DEBUG` matches the namespace (comma-separated patterns, `*` wildcards, `-ns` excludes), like the
 * `debug` package. A library never writes to stdout; never pass key material to a logger.
 */

/** A logger function; `enabled` tells whether it writes anything. */
export interface Logger {
  (message: string, ...args: unknown[]): void;
  readonly namespace: string;
  readonly enabled: boolean;
}

function toRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*?');
  return new RegExp(`^${escaped}$`);
}

/** Whether `namespace` is selected by a DEBUG-style pattern list. */
export function debugEnabled(namespace: string, patterns = process.env.DEBUG ?? ''): boolean {
  let enabled = false;
  for (const raw of patterns.split(/[\s,]+/)) {
    if (raw === '') continue;
    if (raw.startsWith('-')) {
      if (toRegExp(raw.slice(1)).test(namespace)) return false;
    } else if (toRegExp(raw).test(namespace)) {
      enabled = true;
    }
  }
  return enabled;
}

function format(arg: unknown): string {
  if (arg instanceof Error) return arg.stack ?? arg.message;
  if (typeof arg === 'string') return arg;
  try {
    return JSON.stringify(arg);
  } catch {
    return String(arg);
  }
}

/**
 * A logger for `namespace`. DEBUG is read once, when the logger is created.
 *
 * @example
 * const log = createLogger('mmogit:transport');
 * log('dialing %s', addr); // printed to stderr when DEBUG=mmogit:*
 */
export function createLogger(namespace: string): Logger {
  const enabled = debugEnabled(namespace);
  const fn = (message: string, ...args: unknown[]): void => {
    if (!enabled) return;
    let i = 0;
    const text = message.replace(/%[sdoOj]/g, () => (i < args.length ? format(args[i++]) : ''));
    const rest = args.slice(i).map(format);
    process.stderr.write(`${new Date().toISOString()} ${namespace} ${[text, ...rest].join(' ')}\n`);
  };
  return Object.assign(fn, { namespace, enabled });
}
