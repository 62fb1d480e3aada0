import { sql } from "drizzle-orm";
import { type TaskState, TERMINAL_STATES_SQL } from "../../../core/states.js";
import type { Database } from "../database.js";

export interface ChildRecord {
  key: string;
  taskId: string;
  name: string;
  state: TaskState;
  attempt: number;
  settled: boolean;
  subtreeFailed: boolean;
  output: Uint8Array;
  outputContentType: string;
  detail: string;
}

/** A task's spawned children (all, or those with the given keys), in spawn order. */
export async function readChildren(
  database: Database,
  parentTaskId: string,
  keys: readonly string[] = [],
): Promise<ChildRecord[]> {
  const [parent] = await database.rows<{ name: string }>(
    sql`select name from tasks where id = ${parentTaskId}`,
  );
  if (!parent) return [];
  const names = keys.map((key) => `${parent.name}/${key}`);
  const rows = await database.rows<{
    id: string;
    name: string;
    state: number;
    attempt: number;
    settled: boolean;
    subtree_failed: boolean;
    output: Uint8Array | null;
    output_content_type: string | null;
    detail: string | null;
  }>(
    sql`select id, name, state, attempt, state in (${sql.raw(TERMINAL_STATES_SQL)}) and open_children = 0 as settled,
          subtree_failed, output, output_content_type, detail
        from tasks where parent_id = ${parentTaskId}
          ${names.length > 0 ? sql`and name = any(${sql.param(names)}::text[])` : sql``}
        order by created_at, id`,
  );
  const prefix = parent.name.length + 1;
  return rows.map((r) => ({
    key: r.name.slice(prefix),
    taskId: r.id,
    name: r.name,
    state: r.state,
    attempt: r.attempt,
    settled: r.settled,
    subtreeFailed: r.subtree_failed,
    output: r.output ?? new Uint8Array(),
    outputContentType: r.output_content_type ?? "",
    detail: r.detail ?? "",
  }));
}
