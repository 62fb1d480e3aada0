import { type SQL, sql } from "drizzle-orm";
import type { MapReduceJob } from "../../../core/gen/taskframe/v1/spec_pb.js";
import { TaskState, UNSUCCESSFUL_STATES_SQL } from "../../../core/states.js";
import type { Database } from "../database.js";
import type { MapReduceJobState } from "../schema.js";
import { isCurrentAttempt } from "./current-attempt.js";

export interface MapReduceJobRow {
  runId: string;
  jobId: string;
  state: MapReduceJobState;
  stagingDir: string;
  output: string;
  outputKind: number;
  maps: number;
  reducers: number;
  detail: string;
  counters: Record<string, number>;
  decidedAtMs: number | null;
  finishedAtMs: number | null;
}

const COLUMNS = sql.raw(`run_id as "runId", job_id as "jobId", state, staging_dir as "stagingDir", output,
  output_kind as "outputKind", maps, reducers, detail, counters,
  (extract(epoch from decided_at) * 1000)::float8 as "decidedAtMs",
  (extract(epoch from finished_at) * 1000)::float8 as "finishedAtMs"`);

/** The job's row, written with its run (insert-run.ts). */
export function insertJob(runId: string, job: MapReduceJob): SQL {
  return sql`insert into mapreduce_jobs (run_id, job_id, state, staging_dir, output, output_kind, maps, reducers)
    values (${runId}, ${job.jobId}, 'running', ${job.stagingDir}, ${job.output}, ${job.outputKind},
      ${job.maps}, ${job.reducers})`;
}

export async function getJob(database: Database, runId: string): Promise<MapReduceJobRow | undefined> {
  const [row] = await database.rows<MapReduceJobRow>(
    sql`select ${COLUMNS} from mapreduce_jobs where run_id = ${runId}`,
  );
  return row;
}

/**
 * The job's one decision: `running` becomes `to`, or nothing changes because a
 * decision was made already. Returns the row as it is after either.
 */
export async function decideJob(
  database: Database,
  runId: string,
  to: "committing" | "aborting",
  detail: string,
): Promise<MapReduceJobRow | undefined> {
  const [decided] = await database.rows<MapReduceJobRow>(
    sql`update mapreduce_jobs set state = ${to}, decided_at = now(), detail = ${detail}
        where run_id = ${runId} and state = 'running' returning ${COLUMNS}`,
  );
  return decided ?? getJob(database, runId);
}

/** `committing` → `committed` or `aborting` → `aborted`; a no-op when another hub finished it first. */
export async function finishJob(
  database: Database,
  runId: string,
  from: "committing" | "aborting",
  detail: string,
  counters?: Record<string, number>,
): Promise<MapReduceJobRow | undefined> {
  const to = from === "committing" ? "committed" : "aborted";
  const setCounters = counters ? sql`, counters = ${JSON.stringify(counters)}::jsonb` : sql``;
  await database.rows(
    sql`update mapreduce_jobs set state = ${to}, finished_at = now(), detail = ${detail} ${setCounters}
        where run_id = ${runId} and state = ${from}`,
  );
  return getJob(database, runId);
}

/** Running jobs among these runs (a task of theirs just failed for good). */
export async function runningJobsOf(database: Database, runIds: readonly string[]): Promise<string[]> {
  if (runIds.length === 0) return [];
  const rows = await database.rows<{ runId: string }>(
    sql`select run_id as "runId" from mapreduce_jobs
        where state = 'running' and run_id = any(${sql.param(runIds)}::uuid[])`,
  );
  return rows.map((r) => r.runId);
}

/**
 * What the leading hub finishes or cleans: jobs a hub left half-way
 * (committing, aborting), running jobs with a task that failed for good, and
 * jobs aborted a while ago whose staging directory is looked at once more.
 */
export async function jobsToSettle(
  database: Database,
  abortedWithinMs: number,
): Promise<{ unfinished: MapReduceJobRow[]; failing: string[]; recentlyAborted: MapReduceJobRow[] }> {
  const unfinished = await database.rows<MapReduceJobRow>(
    sql`select ${COLUMNS} from mapreduce_jobs where state in ('committing', 'aborting')`,
  );
  const failing = await database.rows<{ runId: string }>(
    sql`select j.run_id as "runId" from mapreduce_jobs j
        where j.state = 'running' and exists (
          select 1 from tasks t where t.run_id = j.run_id
            and t.state in (${sql.raw(UNSUCCESSFUL_STATES_SQL)}))`,
  );
  const recentlyAborted = await database.rows<MapReduceJobRow>(
    sql`select ${COLUMNS} from mapreduce_jobs
        where state = 'aborted' and finished_at > now() - make_interval(secs => ${abortedWithinMs / 1000})`,
  );
  return { unfinished, failing: failing.map((r) => r.runId), recentlyAborted };
}

/**
 * The run whose commit task this attempt is, if the attempt is the task's
 * current one and every other task of the run succeeded; otherwise why not.
 */
export async function commitAttemptRun(
  database: Database,
  attempt: { taskId: string; attempt: number; leaseEpoch: number },
): Promise<{ runId: string } | { refused: string }> {
  const [task] = await database.rows<{
    runId: string;
    name: string;
    state: number;
    attempt: number;
    leaseEpoch: number;
    unfinished: number;
  }>(
    sql`select t.run_id as "runId", t.name, t.state, t.attempt, t.lease_epoch::int as "leaseEpoch",
          (select count(*)::int from tasks o where o.run_id = t.run_id and o.id <> t.id
            and o.state <> ${TaskState.SUCCEEDED}) as unfinished
        from tasks t where t.id = ${attempt.taskId}`,
  );
  if (!task) return { refused: `no task ${attempt.taskId}` };
  if (!isCurrentAttempt(task, attempt.attempt, attempt.leaseEpoch)) {
    return {
      refused:
        `attempt ${attempt.attempt} (lease ${attempt.leaseEpoch}) of ${task.name} is not running: ` +
        `the task is ${TaskState[task.state]} in attempt ${task.attempt} (lease ${task.leaseEpoch})`,
    };
  }
  if (task.name !== "commit") return { refused: `${task.name} is not a MapReduce job's commit task` };
  if (task.unfinished > 0) {
    return { refused: `${task.unfinished} other task(s) of the run have not succeeded` };
  }
  return { runId: task.runId };
}
