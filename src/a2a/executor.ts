/**
 * The A2A `AgentExecutor` of an mmogit agent: an inbound message is recorded durably (journal.ts), becomes a
 * task in `TASK_STATE_SUBMITTED`, and is handed to the agent program as an {@link A2aTask}; the program's
 * answer completes the task with an artifact (or fails it). A program that does not answer in time leaves the
 * task `TASK_STATE_WORKING`: the caller gets that task back and can `GetTask` it later, and a late answer is
 * still written to the task store.
 * @module
 */
import { randomUUID } from 'node:crypto';
import { type Message, type Part, Role, type Task, TaskState } from '@a2a-js/sdk';
import {
  AgentEvent,
  type AgentExecutor,
  type ExecutionEventBus,
  type RequestContext,
  type TaskStore,
} from '@a2a-js/sdk/server';
import { createLogger } from '../_log.js';
import { MmogitError } from '../errors.js';
import type { A2aInboundMessage, A2aJournal } from './journal.js';
import { messageContent, type ProofChecker } from './proof.js';
import { outsideSdkScope } from './sdk-console.js';

const log = createLogger('mmogit:a2a');

/** How long `SendMessage` waits for the agent program's answer before returning the task as working. */
export const DEFAULT_ANSWER_WAIT_MS = 20_000;

/** An answer of the agent program. */
export interface A2aAnswer {
  text?: string;
  data?: unknown;
}

/** An inbound A2A task, as the agent program sees it (`agent.on('a2a-task', …)`). */
export interface A2aTask {
  readonly message: A2aInboundMessage;
  /** Completes the task: the answer becomes its artifact and the final status message. Once only. */
  complete(answer: A2aAnswer): Promise<void>;
  /** Fails the task with a reason the caller sees. Once only. */
  fail(reason: string): Promise<void>;
}

export interface ExecutorOptions {
  journal: A2aJournal;
  taskStore: TaskStore;
  /** Checks an mmogit sender proof on the message, if it carries one (proof.ts). */
  proofs: ProofChecker;
  /** Hands a task to the agent program; returns false when nobody listens. */
  deliver(task: A2aTask): boolean;
  answerWaitMs?: number;
}

function textPart(text: string): Part {
  return {
    content: { $case: 'text', value: text },
    metadata: undefined,
    filename: '',
    mediaType: 'text/plain',
  };
}

function dataPart(data: unknown): Part {
  return {
    content: { $case: 'data', value: data },
    metadata: undefined,
    filename: '',
    mediaType: 'application/json',
  };
}

function answerParts(answer: A2aAnswer): Part[] {
  return [
    ...(answer.text !== undefined ? [textPart(answer.text)] : []),
    ...(answer.data !== undefined ? [dataPart(answer.data)] : []),
  ];
}

function agentMessage(taskId: string, contextId: string, parts: Part[]): Message {
  return {
    messageId: randomUUID(),
    contextId,
    taskId,
    role: Role.ROLE_AGENT,
    parts,
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  };
}

/** The inbound record of a request's user message; `from` is the proven sender's onion, or null. */
export function inboundOf(ctx: RequestContext, from: string | null): A2aInboundMessage {
  const { text, data } = messageContent(ctx.userMessage);
  return {
    via: 'a2a',
    taskId: ctx.taskId,
    contextId: ctx.contextId,
    messageId: ctx.userMessage.messageId,
    text,
    data,
    receivedAt: new Date().toISOString(),
    from,
    verified: from !== null,
  };
}

export function createExecutor(options: ExecutorOptions): AgentExecutor {
  const wait = options.answerWaitMs ?? DEFAULT_ANSWER_WAIT_MS;
  return {
    async execute(ctx: RequestContext, bus: ExecutionEventBus) {
      const { taskId, contextId } = ctx;
      const now = () => new Date().toISOString();
      let from: string | null;
      try {
        from = options.proofs.check(ctx.userMessage);
      } catch (e) {
        // A wrong proof is refused outright (never recorded as an unauthenticated message).
        const reason = e instanceof Error ? e.message : String(e);
        bus.publish(
          AgentEvent.task({
            id: taskId,
            contextId,
            status: {
              state: TaskState.TASK_STATE_REJECTED,
              message: agentMessage(taskId, contextId, [textPart(reason)]),
              timestamp: now(),
            },
            artifacts: [],
            history: [ctx.userMessage],
            metadata: { 'mmogit/via': 'a2a', 'mmogit/error': 'ERR_BAD_SIGNATURE' },
          }),
        );
        bus.finished();
        return;
      }
      const inbound = inboundOf(ctx, from);
      // Durable before anything is published: a caller that sees the task knows the message is kept.
      try {
        await options.journal.append(inbound);
      } catch (e) {
        // Not kept, so the caller must know: a failed task with our code. Never the error's own message
        // (the SDK would send it as "Agent execution error: …"): a file system error names the config dir.
        const code = e instanceof MmogitError ? e.code : 'ERR_INTERNAL';
        const reason =
          e instanceof MmogitError ? e.message : 'the message could not be recorded; it was not accepted';
        log('journal append failed: %s', e instanceof Error ? e.message : String(e));
        bus.publish(
          AgentEvent.task({
            id: taskId,
            contextId,
            status: {
              state: TaskState.TASK_STATE_FAILED,
              message: agentMessage(taskId, contextId, [textPart(`${reason} [${code}]`)]),
              timestamp: now(),
            },
            artifacts: [],
            history: [ctx.userMessage],
            metadata: { 'mmogit/via': 'a2a', 'mmogit/error': code },
          }),
        );
        bus.finished();
        return;
      }
      const task: Task = {
        id: taskId,
        contextId,
        status: { state: TaskState.TASK_STATE_SUBMITTED, message: undefined, timestamp: now() },
        artifacts: [],
        history: [ctx.userMessage],
        metadata: { 'mmogit/via': 'a2a', 'mmogit/authenticated': inbound.verified, 'mmogit/from': from },
      };
      bus.publish(AgentEvent.task(task));

      let live = true; // the bus is open until the executor returns
      let settled = false;
      let wake!: () => void;
      const answered = new Promise<void>((r) => {
        wake = r;
      });
      const finish = async (state: TaskState, parts: Part[], artifact: boolean) => {
        if (settled) return;
        settled = true;
        const message = agentMessage(taskId, contextId, parts);
        const status = { state, message, timestamp: now() };
        const artifacts = artifact
          ? [
              {
                artifactId: randomUUID(),
                name: 'answer',
                description: '',
                parts,
                metadata: undefined,
                extensions: [],
              },
            ]
          : [];
        if (live) {
          for (const a of artifacts) {
            bus.publish(
              AgentEvent.artifactUpdate({
                taskId,
                contextId,
                artifact: a,
                append: false,
                lastChunk: true,
                metadata: undefined,
              }),
            );
          }
          bus.publish(AgentEvent.statusUpdate({ taskId, contextId, status, metadata: undefined }));
        } else {
          // Answered after SendMessage returned: update the stored task so GetTask shows it.
          const stored = await options.taskStore.load(taskId, ctx.context).catch(() => undefined);
          if (stored) {
            await options.taskStore.save(
              { ...stored, status, artifacts: [...stored.artifacts, ...artifacts] },
              ctx.context,
            );
          }
        }
        wake();
      };
      const handle: A2aTask = {
        message: inbound,
        complete: (answer) => finish(TaskState.TASK_STATE_COMPLETED, answerParts(answer), true),
        fail: (reason) => finish(TaskState.TASK_STATE_FAILED, [textPart(reason)], false),
      };
      let listened = false;
      try {
        // Outside the SDK's console scope: the program's own console output is its own (sdk-console.ts).
        listened = outsideSdkScope(() => options.deliver(handle));
      } catch (e) {
        // A listener that throws is the program's bug, not the caller's: the task stays working (it is kept),
        // and the error stays here rather than reaching the caller as "Agent execution error: …".
        log('a2a-task listener threw: %s', e instanceof Error ? e.message : String(e));
      }
      if (listened) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([answered, new Promise<void>((r) => (timer = setTimeout(r, wait)))]);
        clearTimeout(timer);
      }
      if (!settled) {
        bus.publish(
          AgentEvent.statusUpdate({
            taskId,
            contextId,
            status: { state: TaskState.TASK_STATE_WORKING, message: undefined, timestamp: now() },
            metadata: undefined,
          }),
        );
        log(
          'task %s left working (program %s)',
          taskId,
          listened ? 'did not answer in time' : 'not listening',
        );
      }
      live = false;
      bus.finished();
    },
    async cancelTask(taskId: string, bus: ExecutionEventBus) {
      bus.publish(
        AgentEvent.statusUpdate({
          taskId,
          contextId: '',
          status: {
            state: TaskState.TASK_STATE_CANCELED,
            message: undefined,
            timestamp: new Date().toISOString(),
          },
          metadata: undefined,
        }),
      );
      bus.finished();
    },
  };
}
