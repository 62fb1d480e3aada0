import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { DURATION_BUCKETS_SECONDS } from "../core/metrics.js";
import { isTerminal, TaskState, taskStateName } from "../core/states.js";
import type { ReadyWork } from "./store/queries/ready-work.js";
import type { TaskChange } from "./store/queries/task-change.js";

/** Tasks by (state, pool) for the states a task waits or runs in, read when scraped. */
export type OpenTaskCounts = () => Promise<{ state: number; pool: string; count: number }[]>;

/**
 * What a hub measures for Prometheus (`GET /metrics` on its API port):
 * state changes it committed, run times of tasks that ended, recorder
 * batches, fenced results, work published, and (on scrape) the tasks that
 * wait or run, by state and pool.
 */
export class HubMetrics {
  readonly #stateChanges: Counter<"state">;
  readonly #runSeconds: Histogram<"state">;
  readonly #batchSize: Histogram;
  readonly #fenced: Counter;
  readonly #published: Counter<"pool">;

  constructor(
    readonly registry: Registry = new Registry(),
    openTasks?: OpenTaskCounts,
  ) {
    const registers = [registry];
    this.#stateChanges = new Counter({
      name: "taskframe_task_state_changes_total",
      help: "Task state changes the hub committed, by the state entered",
      labelNames: ["state"],
      registers,
    });
    this.#runSeconds = new Histogram({
      name: "taskframe_task_run_seconds",
      help: "Run time of the last attempt of tasks that ended, by end state",
      labelNames: ["state"],
      buckets: DURATION_BUCKETS_SECONDS,
      registers,
    });
    this.#batchSize = new Histogram({
      name: "taskframe_recorder_batch_size",
      help: "State transitions per recorder transaction",
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000],
      registers,
    });
    this.#fenced = new Counter({
      name: "taskframe_fenced_results_total",
      help: "Results refused by fencing (a stale lease or attempt): recorded, not applied",
      registers,
    });
    this.#published = new Counter({
      name: "taskframe_work_published_total",
      help: "Work items published to the queue, by pool",
      labelNames: ["pool"],
      registers,
    });
    if (openTasks) {
      new Gauge({
        name: "taskframe_tasks",
        help: "Tasks waiting or running, by state (CREATED, PENDING = queued, RUNNING, RETRYING) and pool",
        labelNames: ["state", "pool"],
        registers,
        async collect() {
          this.reset();
          for (const row of await openTasks())
            this.set({ state: taskStateName(row.state), pool: row.pool }, row.count);
        },
      });
    }
  }

  recorded(transitions: number, rejected: number): void {
    if (transitions > 0) this.#batchSize.observe(transitions);
    if (rejected > 0) this.#fenced.inc(rejected);
  }

  changed(changes: readonly TaskChange[]): void {
    for (const change of changes) {
      const state = taskStateName(change.state);
      this.#stateChanges.inc({ state });
      if (isTerminal(change.state) && change.startedAtMs !== null && change.finishedAtMs !== null)
        this.#runSeconds.observe({ state }, Math.max(0, change.finishedAtMs - change.startedAtMs) / 1000);
    }
  }

  published(ready: readonly ReadyWork[]): void {
    for (const work of ready) this.#published.inc({ pool: work.pool });
  }
}

export const OPEN_STATES = [TaskState.CREATED, TaskState.PENDING, TaskState.RUNNING, TaskState.RETRYING];
