import { errorMessage, TaskframeError, TaskframeErrorCode } from "../../core/errors.js";
import type { MapReduceJob } from "../../core/gen/taskframe/v1/spec_pb.js";
import type { Logger } from "../../core/logger.js";
import { makeStaging } from "../../core/mapreduce/staging.js";
import { isUnsuccessful, TaskState } from "../../core/states.js";
import type { Leadership } from "../leadership.js";
import type { HubNotifications } from "../notifications.js";
import type { HubStore } from "../store/hub-store.js";
import type { MapReduceJobRow } from "../store/queries/mapreduce-jobs.js";
import type { TaskChange } from "../store/queries/task-change.js";
import { commitOutput, hasStaging, removeStaging } from "./commit-output.js";

export interface JobCoordinatorOptions {
  /** How often the leading hub finishes what a dead hub left half-way. @default 2_000 */
  settleEveryMs?: number;
  /** How long after an abort its staging directory is looked at again (late writers). @default 15_000 */
  recheckAfterMs?: number;
}

interface Deps {
  store: HubStore;
  notifications: HubNotifications;
  leadership: Leadership;
  cancelRun: (runId: string, reason: string) => Promise<number>;
  logger: Logger;
}

/**
 * Commits MapReduce jobs or rolls them back, as a whole (docs/mapreduce.md).
 * Any hub may act on a job: the move out of `running` is one conditional
 * update, so commit and abort cannot both win, and every later step can be
 * repeated by whichever hub gets to it.
 */
export class JobCoordinator {
  readonly #deps: Deps;
  readonly #settleEveryMs: number;
  readonly #recheckAfterMs: number;
  /** One action per job at a time in this hub; other hubs are fenced by the store. */
  readonly #acting = new Map<string, Promise<MapReduceJobRow | undefined>>();
  /** Looks at failed tasks under way: a stopping hub lets them finish, so that an abort is not cut short. */
  readonly #watching = new Set<Promise<void>>();
  #unsubscribe: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #settling: Promise<void> | undefined;

  constructor(deps: Deps, options: JobCoordinatorOptions = {}) {
    this.#deps = deps;
    this.#settleEveryMs = options.settleEveryMs ?? 2_000;
    this.#recheckAfterMs = options.recheckAfterMs ?? 15_000;
  }

  start(): void {
    this.#unsubscribe = this.#deps.notifications.on("tasks:changed", ({ changes }) => {
      const aborting = this.#abortFailing(changes);
      this.#watching.add(aborting);
      void aborting.finally(() => this.#watching.delete(aborting));
    });
    this.#timer = setInterval(() => {
      if (!this.#deps.leadership.isLeader || this.#settling) return;
      this.#settling = this.settle()
        .catch((error: unknown) => this.#deps.logger.warn({ err: error }, "settling MapReduce jobs failed"))
        .finally(() => {
          this.#settling = undefined;
        });
    }, this.#settleEveryMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.();
    clearInterval(this.#timer);
    await this.#settling;
    await Promise.allSettled(this.#watching);
    await Promise.allSettled(this.#acting.values());
  }

  /** The staging directory of a job just submitted; failing here means this hub cannot reach it. */
  async prepare(job: MapReduceJob): Promise<void> {
    await makeStaging(job.stagingDir, job.maps, job.reducers).catch((error: unknown) => {
      throw new TaskframeError(
        TaskframeErrorCode.InvalidArgument,
        `cannot make the job's staging directory ${job.stagingDir} from the hub: ${errorMessage(error)} ` +
          "(hubs and sidecars must reach the work directory at the same path)",
        { cause: error },
      );
    });
  }

  /** Commits the job (the commit task asked, or a hub finishes a commit another began). */
  commit(runId: string): Promise<MapReduceJobRow | undefined> {
    return this.#serially(runId, () => this.#commitNow(runId));
  }

  /** Stops the job's tasks and removes what it staged; a job that began committing is finished instead. */
  abort(runId: string, reason: string): Promise<MapReduceJobRow | undefined> {
    return this.#serially(runId, async () => {
      const { store, logger } = this.#deps;
      const job = await store.decideMapReduceJob(runId, "aborting", reason);
      if (job?.state === "committing") return this.#commitNow(runId);
      if (job?.state !== "aborting") return job;
      await this.#deps.cancelRun(runId, `the MapReduce job is aborted: ${job.detail}`);
      await removeStaging(job);
      logger.info({ runId, reason: job.detail }, "MapReduce job aborted");
      return store.finishMapReduceJob(runId, "aborting", job.detail);
    });
  }

  /** One pass of the leader's sweep: jobs left half-way, failing jobs, late writers after an abort. */
  async settle(): Promise<void> {
    const { unfinished, failing, recentlyAborted } = await this.#deps.store.mapReduceJobsToSettle(
      10 * 60_000,
    );
    for (const job of unfinished) {
      if (job.state === "committing") await this.commit(job.runId);
      else await this.abort(job.runId, job.detail);
    }
    for (const runId of failing) await this.abort(runId, "a task of the job failed for good");
    const now = Date.now();
    for (const job of recentlyAborted) {
      if (now - (job.finishedAtMs ?? now) < this.#recheckAfterMs) continue;
      if (await hasStaging(job)) {
        this.#deps.logger.warn({ runId: job.runId }, "removing what a late attempt wrote after the abort");
        await removeStaging(job);
      }
    }
  }

  async #commitNow(runId: string): Promise<MapReduceJobRow | undefined> {
    const { store, logger } = this.#deps;
    const job = await store.decideMapReduceJob(runId, "committing", "");
    if (job?.state !== "committing") return job;
    const counters = await commitOutput(job);
    const detail = `committed to ${job.output}`;
    logger.info({ runId, output: job.output, counters }, "MapReduce job committed");
    return store.finishMapReduceJob(runId, "committing", detail, counters);
  }

  async #abortFailing(changes: readonly TaskChange[]): Promise<void> {
    // a task that ended without succeeding will not run again: the job cannot commit
    const failed = changes.filter((c) => isUnsuccessful(c.state));
    if (failed.length === 0) return;
    try {
      const jobs = new Set(
        await this.#deps.store.runningMapReduceJobsOf([...new Set(failed.map((c) => c.runId))]),
      );
      for (const change of failed) {
        if (!jobs.has(change.runId)) continue;
        jobs.delete(change.runId);
        const task = await this.#deps.store.findTask({ taskId: change.taskId });
        const ended = `${task?.name ?? change.taskId} ended ${TaskState[change.state]}`;
        await this.abort(change.runId, change.detail ? `${ended}: ${change.detail}` : ended);
      }
    } catch (error) {
      // the leader's sweep finds the job again
      this.#deps.logger.warn({ err: error }, `aborting a failed MapReduce job: ${errorMessage(error)}`);
    }
  }

  #serially(runId: string, action: () => Promise<MapReduceJobRow | undefined>) {
    const before = this.#acting.get(runId) ?? Promise.resolve(undefined);
    const next = before.catch(() => undefined).then(action);
    this.#acting.set(runId, next);
    void next
      .finally(() => {
        if (this.#acting.get(runId) === next) this.#acting.delete(runId);
      })
      .catch(() => {});
    return next;
  }
}
