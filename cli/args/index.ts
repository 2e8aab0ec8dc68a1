/**
 * Every command's yargs table, in the order `mmogit --help` lists them.
 * @module
 */
import type { Argv } from 'yargs';
import type { Handle } from './_handle.js';
import { agentCommands } from './agent.js';
import { integrationCommands } from './integrations.js';
import { memoryCommands } from './memory.js';
import { meshCommands } from './mesh.js';
import { messagingCommands } from './messaging.js';
import { networkCommands } from './network.js';

export function addCommands<T>(y: Argv<T>, handle: Handle): Argv<T> {
  const tables = [
    agentCommands,
    messagingCommands,
    memoryCommands,
    integrationCommands,
    meshCommands,
    networkCommands,
  ];
  return tables.reduce((parser, add) => add(parser, handle), y);
}
