/**
 * A bounded in-memory A2A task store: the SDK's `InMemoryTaskStore` keeps every task forever, and anyone who
 * knows the onion can create tasks. The oldest tasks are forgotten past {@link DEFAULT_MAX_TASKS}; the messages
 * themselves stay in the durable inbound journal.
 * @module
 */
import type { ListTasksRequest, ListTasksResponse, Task } from '@a2a-js/sdk';
import type { TaskStore } from '@a2a-js/sdk/server';

export const DEFAULT_MAX_TASKS = 1_000;
const MAX_PAGE = 100;

export class BoundedTaskStore implements TaskStore {
  private readonly tasks = new Map<string, Task>();

  constructor(private readonly max = DEFAULT_MAX_TASKS) {}

  get size(): number {
    return this.tasks.size;
  }

  async save(task: Task): Promise<void> {
    this.tasks.delete(task.id);
    this.tasks.set(task.id, structuredClone(task));
    for (const id of this.tasks.keys()) {
      if (this.tasks.size <= this.max) break;
      this.tasks.delete(id);
    }
  }

  async load(taskId: string): Promise<Task | undefined> {
    const t = this.tasks.get(taskId);
    return t ? structuredClone(t) : undefined;
  }

  async list(params: ListTasksRequest): Promise<ListTasksResponse> {
    const all = [...this.tasks.values()]
      .reverse()
      .filter(
        (t) =>
          (!params.contextId || t.contextId === params.contextId) &&
          (!params.status || t.status?.state === params.status),
      );
    const offset = Math.max(0, Number.parseInt(params.pageToken || '0', 10) || 0);
    const size = Math.min(Math.max(1, params.pageSize ?? 50), MAX_PAGE);
    const page = all.slice(offset, offset + size).map((t) => structuredClone(t));
    return {
      tasks: page,
      nextPageToken: offset + size < all.length ? String(offset + size) : '',
      pageSize: size,
      totalSize: all.length,
    };
  }
}
