import { fromBinary } from "@bufbuild/protobuf";
import { sql } from "drizzle-orm";
import { WorkItemSchema } from "../../../core/gen/taskframe/v1/messages_pb.js";
import type { Database } from "../database.js";
import type { ReadyWork } from "./ready-work.js";

/** Deletes outbox rows whose items were published. */
export async function deletePublished(database: Database, outboxIds: readonly number[]): Promise<void> {
  if (outboxIds.length === 0) return;
  await database.db.execute(sql`delete from outbox where id = any(${sql.param(outboxIds)}::bigint[])`);
}

/** Outbox rows older than `olderThanMs`: written, but their publisher never confirmed them (e.g. it crashed). */
export async function unpublishedWork(
  database: Database,
  olderThanMs: number,
  limit = 1_000,
): Promise<ReadyWork[]> {
  const rows = await database.rows<{ id: number; pool: string; payload: Uint8Array }>(
    sql`select id, pool, payload from outbox
        where created_at <= now() - make_interval(secs => ${olderThanMs / 1000})
        order by id limit ${limit}`,
  );
  return rows.map((r) => ({
    pool: r.pool,
    item: fromBinary(WorkItemSchema, r.payload),
    outboxId: Number(r.id),
  }));
}
