/**
 * What the argument tables hand to yargs: a lazy loader per command, and `handle`, which turns one into a
 * yargs handler (cli/main.ts runs it, prints the result and sets the exit code).
 * @module
 */
import type { CommandResult } from '../output.js';

// Each command declares its own argument type; yargs has validated the shape before the call.
export type Loader = () => Promise<{ default: (args: never) => Promise<CommandResult> }>;
export type Handle = (load: Loader) => (args: unknown) => void;
