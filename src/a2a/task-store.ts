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
/**
 * A `ListTasks` page stops growing past this many bytes of JSON (it always holds at least one task), with a
 * `nextPageToken` for the rest: a page of 100 tasks of 64 KiB messages was over 24 MB, which any caller could
 * make the server build and hold (A2A v1.0 `ListTasksRequest.pageSize` is a maximum, not a promise).
 */
export const MAX_PAGE_BYTES = 1024 * 1024;

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
    const page: Task[] = [];
    let bytes = 0;
    for (const t of all.slice(offset, offset + size)) {
      // A2A v1.0 `ListTasksRequest.includeArtifacts`: "Defaults to false to reduce payload size".
      const task = params.includeArtifacts === true ? t : { ...t, artifacts: [] };
      const cost = Buffer.byteLength(JSON.stringify(task)); // bytes, as the bound says, not UTF-16 units
      if (page.length > 0 && bytes + cost > MAX_PAGE_BYTES) break;
      bytes += cost;
      page.push(structuredClone(task));
    }
    const next = offset + page.length;
    return {
      tasks: page,
      nextPageToken: next < all.length ? String(next) : '',
      pageSize: size,
      totalSize: all.length,
    };
  }
}
