import { create, fromBinary } from "@bufbuild/protobuf";
import { sql } from "drizzle-orm";
import { WorkItemSchema } from "../../../core/gen/taskframe/v1/messages_pb.js";
import { TaskSpecSchema } from "../../../core/gen/taskframe/v1/spec_pb.js";
import { TaskState } from "../../../core/states.js";
import { toIso } from "../chunked.js";
import type { Database } from "../database.js";
import { databaseNowMs } from "./database-clock.js";
import { writeOutbox } from "./insert-run.js";
import type { ReadyWork } from "./ready-work.js";
import { insertEvents, pendingEvent } from "./record-events.js";
import type { TaskChange } from "./task-change.js";

export interface ReleasedRetries {
  ready: ReadyWork[];
  changes: TaskChange[];
  /** How soon the next not-yet-due retry is due, if any. */
  nextRetryInMs: number | undefined;
}

/**
 * Moves RETRYING tasks whose interval has passed to PENDING with the next
 * attempt number, and queues them. Safe with many hubs: SKIP LOCKED hands
 * each due task to one of them.
 */
export async function releaseDueRetries(
  database: Database,
  at?: number,
  limit = 1_000,
): Promise<ReleasedRetries> {
  return database.transaction(async (tx) => {
    // Postgres's clock, as when the retry was set (record-events.ts), unless a test gives one
    const nowMs = at ?? (await databaseNowMs(database, tx));
    const due = await database.rows<{
      id: string;
      run_id: string;
      attempt: number;
      pool: string;
      spec: Uint8Array;
      detail: string | null;
    }>(
      sql`update tasks t set state = ${TaskState.PENDING}, attempt = t.attempt + 1, dispatch = 1, lease_epoch = 0, updated_at = now(),
            retry_at = null, host = null, exit_code = null, started_at = null, finished_at = null
          where t.id in (
            select id from tasks where state = ${TaskState.RETRYING} and retry_at <= ${toIso(nowMs)}::timestamptz
            order by retry_at limit ${limit} for update skip locked)
          returning t.id, t.run_id, t.attempt, t.pool, t.spec, t.detail`,
      tx,
    );
    const ready: ReadyWork[] = [];
    const changes: TaskChange[] = [];
    const events = due.map((r) => {
      ready.push({
        pool: r.pool,
        item: create(WorkItemSchema, {
          taskId: r.id,
          runId: r.run_id,
          attempt: r.attempt,
          dispatch: 1,
          spec: fromBinary(TaskSpecSchema, r.spec),
        }),
      });
      changes.push({
        taskId: r.id,
        runId: r.run_id,
        state: TaskState.PENDING,
        attempt: r.attempt,
        host: null,
        exitCode: null,
        detail: r.detail,
        startedAtMs: null,
        finishedAtMs: null,
        retryAtMs: null,
      });
      return pendingEvent(
        r.run_id,
        r.id,
        nowMs,
        r.attempt,
        TaskState.RETRYING,
        `attempt ${r.attempt} queued`,
      );
    });
    await insertEvents(tx, events);
    await writeOutbox(database, tx, ready);
    const next = await database.rows<{ at_ms: number | null }>(
      sql`select (extract(epoch from min(retry_at)) * 1000)::float8 as at_ms from tasks where state = ${TaskState.RETRYING}`,
      tx,
    );
    const nextAtMs = next[0]?.at_ms ?? undefined;
    return { ready, changes, nextRetryInMs: nextAtMs === undefined ? undefined : nextAtMs - nowMs };
  });
}
