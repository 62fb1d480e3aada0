import { sql } from "drizzle-orm";
import { TaskframeError, TaskframeErrorCode } from "../../core/errors.js";
import type { LogChunk, StateTransition } from "../../core/gen/taskframe/v1/messages_pb.js";
import type { RunSpec } from "../../core/gen/taskframe/v1/spec_pb.js";
import type { TaskState } from "../../core/states.js";
import type { HubVerdict } from "../apply-transitions.js";
import { OPEN_STATES } from "../hub-metrics.js";
import {
  type Database,
  type DatabaseTarget,
  databaseErrorMessage,
  openDatabase,
  redactUrl,
} from "./database.js";
import { migrateDatabase } from "./migrate.js";
import { abandonUnfinishedRuns } from "./queries/abandon-runs.js";
import { cancelRun } from "./queries/cancel-run.js";
import { readChildren } from "./queries/children.js";
import { insertRun } from "./queries/insert-run.js";
import * as mapreduce from "./queries/mapreduce-jobs.js";
import { deletePublished, unpublishedWork } from "./queries/outbox.js";
import { readTaskInput, storeTaskOutput } from "./queries/payloads.js";
import { pruneAuthDenials, pruneFinishedRuns, pruneScheduleHistory } from "./queries/prune-runs.js";
import * as read from "./queries/read.js";
import { type DispatchedTask, republishLost, staleDispatchedTasks, taskStates } from "./queries/reconcile.js";
import { recordEvents } from "./queries/record-events.js";
import { releaseDueRetries } from "./queries/release-retries.js";
import { type SpawnRequest, spawnChildren } from "./queries/spawn-children.js";
import { taskStats } from "./queries/stats.js";

/**
 * Everything the hub reads and writes, one method per operation. The single
 * seam to the database, so that it can be wrapped (fault injection, metrics).
 */
export class HubStore implements AsyncDisposable {
  private constructor(readonly database: Database) {}

  /** Opens the database and brings its schema up to date. */
  static async open(target: DatabaseTarget): Promise<HubStore> {
    const database = await openDatabase(target);
    try {
      await migrateDatabase(database);
    } catch (error) {
      await database.close();
      const where = target.kind === "pglite" ? target.dataDir : redactUrl(target.url);
      throw new TaskframeError(
        TaskframeErrorCode.Unavailable,
        `cannot bring the store at ${where} up to date: ${databaseErrorMessage(error)}`,
        { cause: error },
      );
    }
    return new HubStore(database);
  }

  insertRun(spec: RunSpec, idempotencyKey = "", tenant = "default") {
    return insertRun(this.database, spec, idempotencyKey, tenant);
  }
  recordEvents(
    transitions: readonly StateTransition[],
    logs: readonly LogChunk[],
    nowMs?: number,
    verdicts?: readonly HubVerdict[],
  ) {
    return recordEvents(this.database, transitions, logs, nowMs, verdicts);
  }
  readTaskInput(taskId: string) {
    return readTaskInput(this.database, taskId);
  }
  storeTaskOutput(output: Parameters<typeof storeTaskOutput>[1]) {
    return storeTaskOutput(this.database, output);
  }
  readChildren(parentTaskId: string, keys?: readonly string[]) {
    return readChildren(this.database, parentTaskId, keys);
  }
  spawnChildren(request: SpawnRequest, nowMs?: number) {
    return spawnChildren(this.database, request, nowMs);
  }
  releaseDueRetries(nowMs?: number, limit?: number) {
    return releaseDueRetries(this.database, nowMs, limit);
  }
  cancelRun(runId: string, reason: string) {
    return cancelRun(this.database, runId, reason);
  }
  pruneFinishedRuns(olderThanMs: number, batch: number) {
    return pruneFinishedRuns(this.database, olderThanMs, batch);
  }
  pruneAuthDenials(olderThanMs: number, batch: number) {
    return pruneAuthDenials(this.database, olderThanMs, batch);
  }
  pruneScheduleHistory(olderThanMs: number, batch: number) {
    return pruneScheduleHistory(this.database, olderThanMs, batch);
  }
  abandonUnfinishedRuns(reason: string) {
    return abandonUnfinishedRuns(this.database, reason);
  }
  deletePublished(outboxIds: readonly number[]) {
    return deletePublished(this.database, outboxIds);
  }
  unpublishedWork(olderThanMs: number) {
    return unpublishedWork(this.database, olderThanMs);
  }
  staleDispatchedTasks(staleAfterMs: number, limit = 500) {
    return staleDispatchedTasks(this.database, staleAfterMs, limit);
  }
  republishLost(lost: readonly DispatchedTask[]) {
    return republishLost(this.database, lost);
  }
  taskStates(ids: readonly string[]) {
    return taskStates(this.database, ids);
  }
  resolveRunId(idOrPrefix: string, tenants?: readonly string[]) {
    return read.resolveRunId(this.database, idOrPrefix, tenants);
  }
  getRun(runId: string) {
    return read.getRun(this.database, runId);
  }
  listRuns(limit: number, includeEvaluations = false, tenants?: readonly string[]) {
    return read.listRuns(this.database, { limit, includeEvaluations, ...(tenants ? { tenants } : {}) });
  }
  listTasks(
    runId: string,
    options?: { states?: readonly TaskState[]; limit?: number; ids?: readonly string[]; withNeeds?: boolean },
  ) {
    return read.listTasks(this.database, runId, options);
  }
  findTask(ref: { taskId?: string; runId?: string; name?: string }, tenants?: readonly string[]) {
    return read.findTask(this.database, ref, tenants);
  }
  readAudit(taskId: string) {
    return read.readAudit(this.database, taskId);
  }
  /** Tasks waiting or running, by state and pool (the metrics' `taskframe_tasks`). */
  openTaskCounts() {
    return this.database.rows<{ state: number; pool: string; count: number }>(
      sql`select state, pool, count(*)::int as count from tasks
          where state in (${sql.raw(OPEN_STATES.join(", "))}) group by state, pool`,
    );
  }
  taskStats(options: Parameters<typeof taskStats>[1]) {
    return taskStats(this.database, options);
  }
  readLogs(taskId: string, options?: Parameters<typeof read.readLogs>[2]) {
    return read.readLogs(this.database, taskId, options);
  }

  getMapReduceJob(runId: string) {
    return mapreduce.getJob(this.database, runId);
  }
  decideMapReduceJob(runId: string, to: "committing" | "aborting", detail: string) {
    return mapreduce.decideJob(this.database, runId, to, detail);
  }
  finishMapReduceJob(
    runId: string,
    from: "committing" | "aborting",
    detail: string,
    counters?: Record<string, number>,
  ) {
    return mapreduce.finishJob(this.database, runId, from, detail, counters);
  }
  runningMapReduceJobsOf(runIds: readonly string[]) {
    return mapreduce.runningJobsOf(this.database, runIds);
  }
  mapReduceJobsToSettle(abortedWithinMs: number) {
    return mapreduce.jobsToSettle(this.database, abortedWithinMs);
  }
  mapReduceCommitAttemptRun(attempt: Parameters<typeof mapreduce.commitAttemptRun>[1]) {
    return mapreduce.commitAttemptRun(this.database, attempt);
  }

  /** Whether the database answers. */
  async ping(): Promise<void> {
    await this.database.db.execute(sql`select 1`);
  }

  close(): Promise<void> {
    return this.database.close();
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

export type { DatabaseTarget };
