import { fromBinary } from "@bufbuild/protobuf";
import { sql } from "drizzle-orm";
import { TaskframeError, TaskframeErrorCode } from "../../../core/errors.js";
import { TaskSpecSchema } from "../../../core/gen/taskframe/v1/spec_pb.js";
import type { Database } from "../database.js";

/*
 * Claim checks: payloads too large for one queue or event message travel
 * through the hub instead (inputs are in the task's spec already; outputs
 * are staged per attempt and lease until the recorder applies the result).
 */

/** A handler task's input, from its recorded spec. */
export async function readTaskInput(
  database: Database,
  taskId: string,
): Promise<{ input: Uint8Array; contentType: string }> {
  const [row] = await database.rows<{ spec: Uint8Array }>(sql`select spec from tasks where id = ${taskId}`);
  if (!row) throw new TaskframeError(TaskframeErrorCode.NotFound, `no task ${taskId}`);
  const target = fromBinary(TaskSpecSchema, row.spec).target;
  if (target.case !== "handler") {
    throw new TaskframeError(
      TaskframeErrorCode.InvalidArgument,
      `task ${taskId} is not a handler task: it has no input`,
    );
  }
  return { input: target.value.input, contentType: target.value.contentType };
}

/** Stages an attempt's output; storing it again (a retried call) replaces it. */
export async function storeTaskOutput(
  database: Database,
  output: { taskId: string; attempt: number; leaseEpoch: number; data: Uint8Array; contentType: string },
): Promise<void> {
  const [task] = await database.rows<{ attempt: number }>(
    sql`select attempt from tasks where id = ${output.taskId}`,
  );
  if (!task) throw new TaskframeError(TaskframeErrorCode.NotFound, `no task ${output.taskId}`);
  if (task.attempt !== output.attempt) {
    throw new TaskframeError(
      TaskframeErrorCode.Stale,
      `task ${output.taskId} is in attempt ${task.attempt}, not ${output.attempt}: its output is not wanted`,
    );
  }
  const data = Buffer.from(output.data.buffer, output.data.byteOffset, output.data.byteLength).toString(
    "base64",
  );
  await database.rows(
    sql`insert into task_outputs (task_id, attempt, lease_epoch, data, content_type)
        values (${output.taskId}, ${output.attempt}, ${output.leaseEpoch}, decode(${data}, 'base64'), ${output.contentType})
        on conflict (task_id, attempt, lease_epoch) do update set data = excluded.data, content_type = excluded.content_type`,
  );
}
