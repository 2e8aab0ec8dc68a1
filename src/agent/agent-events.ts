/**
 * The events an `Agent` emits, for a typed `agent.on(…)`; the runtime emits them through {@link AgentEmit}
 * without knowing the `Agent` class.
 * @module
 */
import type { EventEmitter } from 'node:events';
import type { A2aTask } from '../a2a/executor.js';
import type { DeliveredEvent, QueuedEvent, ReceivedMessage, RefusedEvent } from './messaging-types.js';

/** Something the runtime noticed (tor died or restarted, a downgrade, a sync, …), also kept in `status().events`. */
export interface RuntimeEvent {
  type: string;
  detail: string;
}

/**
 * - `message`: a new verified message (exactly once per sender and id);
 * - `delivered`: a sent message was acknowledged;
 * - `queued`: a delivery attempt failed, the message stays queued;
 * - `refused`: a queued message the peer can never take (a version 1 peer, a version 2 message): dropped;
 * - `event`: a {@link RuntimeEvent};
 * - `a2a-task`: a message that arrived over A2A (started with `a2a`), for the program to complete or fail.
 */
export interface AgentEvents {
  message: [ReceivedMessage];
  delivered: [DeliveredEvent];
  queued: [QueuedEvent];
  refused: [RefusedEvent];
  event: [RuntimeEvent];
  'a2a-task': [A2aTask];
}

/** Emits one of the {@link AgentEvents} (an `EventEmitter<AgentEvents>`'s bound `emit`). */
export type AgentEmit = EventEmitter<AgentEvents>['emit'];
