import { create, fromBinary } from "@bufbuild/protobuf";
import {
  type ConditionEvaluation,
  ConditionEvaluationSchema,
  type Schedule,
  type ScheduleFire,
  ScheduleFireSchema,
  ScheduleSchema,
  ScheduleSpecSchema,
} from "../../core/gen/taskframe/v1/schedule_pb.js";
import type { EvaluationRow, FireRow, ScheduleRow } from "../store/queries/schedules.js";

const int = (ms: number | null | undefined) => BigInt(Math.round(ms ?? 0));

export function fireToProto(row: FireRow): ScheduleFire {
  return create(ScheduleFireSchema, {
    slotUnixMs: int(row.slot_ms),
    firedAtUnixMs: int(row.fired_at_ms),
    outcome: row.outcome,
    cause: row.cause,
    runId: row.run_id ?? "",
    runState: row.run_state ?? 0,
    detail: row.detail,
  });
}

export function evaluationToProto(row: EvaluationRow): ConditionEvaluation {
  return create(ConditionEvaluationSchema, {
    slotUnixMs: int(row.slot_ms),
    outcome: row.outcome,
    host: row.host,
    ...(row.exit_code === null ? {} : { exitCode: row.exit_code }),
    startedAtUnixMs: int(row.started_at_ms),
    durationMs: int(row.duration_ms),
    runId: row.run_id,
    taskId: row.task_id,
    detail: row.detail,
    fired: row.fired,
  });
}

/** The stored spec; one this version cannot read is listed by its name alone (the scheduler logs why). */
function readableSpec(row: ScheduleRow) {
  try {
    return fromBinary(ScheduleSpecSchema, row.spec);
  } catch {
    return create(ScheduleSpecSchema, { name: row.name });
  }
}

export function scheduleToProto(
  row: ScheduleRow,
  lastFire?: FireRow,
  lastEvaluation?: EvaluationRow,
): Schedule {
  return create(ScheduleSchema, {
    spec: readableSpec(row),
    paused: row.paused,
    pausedReason: row.paused_reason,
    nextFireUnixMs: row.paused ? 0n : int(row.next_due_ms),
    ...(lastFire ? { lastFire: fireToProto(lastFire) } : {}),
    ...(lastEvaluation ? { lastEvaluation: evaluationToProto(lastEvaluation) } : {}),
    queued: row.queued,
    createdAtUnixMs: int(row.created_at_ms),
    updatedAtUnixMs: int(row.updated_at_ms),
  });
}
