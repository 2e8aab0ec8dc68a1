/**
 * `mmogit <command> --help --json`: the command's help as one JSON document, read from yargs' own tables at the
 * moment it would print its text help (the command's builder has run, so its options, positionals and
 * subcommands are the ones yargs knows), never from a second, hand-kept copy. docs/cli.md, Global options.
 * @module
 */
import type { Argv } from 'yargs';

/** One flag of a command (hidden flags are left out, as the text help leaves them out). */
export interface OptionHelp {
  name: string;
  type: 'boolean' | 'string' | 'number' | 'count' | 'unknown';
  description?: string;
  /** The other names of the flag (`-f` for `--follow`). */
  aliases?: string[];
  /** Given more than once, or with several values, it collects them. */
  array?: true;
  default?: unknown;
  choices?: unknown[];
  required?: true;
}

/** One positional argument, from the command's declaration (`send <peer> [text]`). */
export interface PositionalHelp {
  name: string;
  type: OptionHelp['type'];
  description?: string;
  required: boolean;
  /** Takes the rest of the words (`[files..]`). */
  variadic?: true;
}

/** One subcommand as the parent's help lists it (hidden commands are left out). */
export interface SubcommandHelp {
  name: string;
  usage: string;
  description?: string;
  aliases?: string[];
}

/** What `--help --json` prints: the command yargs resolved from the words given. */
export interface CommandHelp {
  /** `mmogit` and the command's words: `mmogit daemon log`. */
  command: string;
  usage: string;
  description?: string;
  positionals: PositionalHelp[];
  options: OptionHelp[];
  commands: SubcommandHelp[];
}

/** Thrown from yargs' help path instead of printing text; cli/main.ts prints its document (exit 0). */
export class HelpRequested extends Error {
  constructor(readonly help: CommandHelp) {
    super('help requested');
    this.name = 'HelpRequested';
  }
}

/**
 * The parts of a yargs instance the help is read from. `getOptions()`, `getInternalMethods()` and the usage
 * instance are how yargs' own help renderer reads them; they are not in yargs' typings (yargs 18).
 */
interface YargsTables {
  $0: string;
  getOptions(): {
    key: Record<string, unknown>;
    alias: Record<string, string[]>;
    array: string[];
    boolean: string[];
    string: string[];
    number: string[];
    count: string[];
    default: Record<string, unknown>;
    choices: Record<string, unknown[]>;
    demandedOptions: Record<string, unknown>;
    hiddenOptions: string[];
  };
  getInternalMethods(): {
    getContext(): { commands: string[]; fullCommands: string[] };
    getUsageInstance(): {
      getUsage(): [string, string | undefined][];
      getCommands(): [string, string | undefined, boolean, string[], boolean][];
      getDescriptions(): Record<string, string | undefined>;
    };
  };
}

/** yargs marks its built-in descriptions ("Show help") for translation with this prefix. */
const YARGS_STRING = '__yargsString__:';

function text(description: string | undefined): string | undefined {
  if (description === undefined || description === '') return undefined;
  return description.startsWith(YARGS_STRING) ? description.slice(YARGS_STRING.length) : description;
}

/** Positionals of a declaration such as `send <peer> [text]` or `add <files..>` (yargs' own syntax). */
function positionalsOf(
  declaration: string | undefined,
): { name: string; required: boolean; variadic: boolean }[] {
  if (declaration === undefined) return [];
  return declaration
    .split(/\s+/)
    .slice(1)
    .flatMap((word) => {
      const m = /^([<[])([^\]>]+)[\]>]$/.exec(word);
      if (!m) return [];
      const inner = m[2] as string;
      const variadic = inner.endsWith('..');
      const name = (variadic ? inner.slice(0, -2) : inner).split('|')[0] as string;
      return [{ name, required: m[1] === '<', variadic }];
    });
}

/**
 * The help of the command yargs is about to describe, read from instance `y`'s tables.
 *
 * @example
 * // inside yargs' help path for `mmogit daemon log --help`
 * describeCommand(y).options.map((o) => o.name) // ['config-dir', 'json', 'verbose', 'help', 'version', 'follow', 'lines']
 */
export function describeCommand(y: Argv): CommandHelp {
  const tables = y as unknown as YargsTables;
  const options = tables.getOptions();
  const internals = tables.getInternalMethods();
  const usage = internals.getUsageInstance();
  const context = internals.getContext();
  const descriptions = usage.getDescriptions();
  const $0 = tables.$0;

  const typeOf = (key: string): OptionHelp['type'] => {
    if (options.count.includes(key)) return 'count';
    if (options.boolean.includes(key)) return 'boolean';
    if (options.number.includes(key)) return 'number';
    if (options.string.includes(key)) return 'string';
    return 'unknown';
  };

  const positionals: PositionalHelp[] = positionalsOf(context.fullCommands.at(-1)).map((p) => {
    const out: PositionalHelp = { name: p.name, type: typeOf(p.name), required: p.required };
    const description = text(descriptions[p.name]);
    if (description !== undefined) out.description = description;
    if (p.variadic) out.variadic = true;
    return out;
  });
  const positionalNames = new Set(positionals.map((p) => p.name));
  const aliasNames = new Set(Object.values(options.alias).flat());
  const hidden = new Set(options.hiddenOptions);

  const flags: OptionHelp[] = [];
  for (const name of Object.keys(options.key)) {
    if (positionalNames.has(name) || aliasNames.has(name) || hidden.has(name)) continue;
    const choices = options.choices[name];
    let type = typeOf(name);
    // A flag declared by its choices alone (`--policy`) takes one of them: strings, here.
    if (type === 'unknown' && choices?.length && choices.every((c) => typeof c === 'string')) type = 'string';
    const out: OptionHelp = { name, type };
    const description = text(descriptions[name]);
    if (description !== undefined) out.description = description;
    const aliases = options.alias[name] ?? [];
    if (aliases.length > 0) out.aliases = [...aliases];
    if (options.array.includes(name)) out.array = true;
    if (Object.hasOwn(options.default, name)) out.default = options.default[name];
    if (choices !== undefined && choices.length > 0) out.choices = [...choices];
    if (Object.hasOwn(options.demandedOptions, name)) out.required = true;
    flags.push(out);
  }

  const path = [$0, ...context.commands].join(' ');
  // A command's usage line is `$0 <words> <positionals>` with its description; the top level's is the one
  // `.usage()` string, its first line the usage and the rest the description.
  const [line, described] = usage.getUsage()[0] ?? [path, undefined];
  const [first, ...rest] = line.replaceAll('$0', $0).split('\n');
  const description = text(described) ?? text(rest.join('\n').trim());
  return {
    command: path,
    usage: first as string,
    ...(description === undefined ? {} : { description }),
    positionals,
    options: flags,
    commands: usage.getCommands().map(([declaration, about, , aliases]) => {
      const sub: SubcommandHelp = {
        name: declaration.split(/\s+/)[0] as string,
        usage: `${path} ${declaration}`,
      };
      const d = text(about);
      if (d !== undefined) sub.description = d;
      if (aliases.length > 0) sub.aliases = [...aliases];
      return sub;
    }),
  };
}

/**
 * Makes parser `y` answer a help request with {@link HelpRequested} (thrown out of `parseAsync`) instead of
 * printing text: yargs calls the instance's own `showHelp` once the command's builder has run.
 */
export function helpAsJson<T>(y: Argv<T>): Argv<T> {
  y.showHelp = () => {
    throw new HelpRequested(describeCommand(y as Argv));
  };
  return y;
}
