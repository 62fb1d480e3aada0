import type { Registry } from "prom-client";
import { errorMessage, TaskframeError, TaskframeErrorCode } from "../core/errors.js";
import type { ControlBus, EventSource } from "../core/event-bus.js";
import type { RunSpec } from "../core/gen/taskframe/v1/spec_pb.js";
import { keepRunning } from "../core/keep-running.js";
import { type Logger, silentLogger } from "../core/logger.js";
import type { WorkQueue } from "../core/work-queue.js";
import { type Admission, checkAdmission, DEFAULT_ADMISSION } from "./admission.js";
import { Dispatcher } from "./dispatcher.js";
import { HubMetrics } from "./hub-metrics.js";
import { type Leadership, SoleLeader } from "./leadership.js";
import { JobCoordinator, type JobCoordinatorOptions } from "./mapreduce/job-coordinator.js";
import { HubNotifications } from "./notifications.js";
import { QueueBackpressure, type QueueBackpressureOptions } from "./queue-backpressure.js";
import { Reconciler, type ReconcilerOptions } from "./reconciler.js";
import { Recorder } from "./recorder.js";
import { Retention, type RetentionOptions } from "./retention.js";
import { RetryBudget } from "./retry-budget.js";
import { RetryTimer } from "./retry-timer.js";
import { Scheduler, type SchedulerOptions } from "./schedules/scheduler.js";
import type { HubStore } from "./store/hub-store.js";
import type { RunRecord } from "./store/queries/read.js";
import type { SpawnedTask, SpawnRequest } from "./store/queries/spawn-children.js";
import { validateRunSpec } from "./validate-run.js";

export interface HubOptions {
  store: HubStore;
  queue: WorkQueue;
  events: EventSource;
  control: ControlBus;
  logger?: Logger;
  /** Outbox rows older than this are published again (their publisher died). @default 10_000 */
  outboxSweepAfterMs?: number;
  /** Decides which hub runs the reconciler. @default the only hub (embedded) */
  leadership?: Leadership;
  reconcile?: ReconcilerOptions;
  /**
   * Whether this hub fires schedules (every hub may: they share the work),
   * and the scheduler's clock and sleep for tests. @default { fire: true }
   */
  schedules?: { fire?: boolean } & Pick<SchedulerOptions, "clock" | "maxSleepMs">;
  /** Delete runs finished longer ago than this (leading hub only). @default keep every run */
  retention?: RetentionOptions;
  /** Where the hub's Prometheus metrics go. @default a registry of its own */
  metrics?: Registry;
  mapreduce?: JobCoordinatorOptions;
  /** Pool policies (`--pool-policy`) and size limits every submission, spawn and schedule must meet. @default DEFAULT_ADMISSION */
  admission?: Admission;
  /** How the outbox is retried while the queue does not store work. */
  backpressure?: QueueBackpressureOptions;
  /** At most this many retries released per second, by all hubs together. @default no limit */
  retryBudget?: { perSecond: number };
}

/** Retries released per transaction. */
const RETRY_BATCH = 1_000;

/**
 * - `created`  constructed; nothing running
 * - `running`  recording events, releasing retries, sweeping the outbox
 * - `stopped`  loops ended, timers cleared (the store and channels belong to the caller)
 */
export type HubState = "created" | "running" | "stopped";

/** The control plane: accepts runs, records what sidecars report, schedules what follows. */
export class Hub implements AsyncDisposable {
  readonly store: HubStore;
  readonly notifications = new HubNotifications();
  readonly metrics: HubMetrics;
  /** Schedules: registered through the API, fired by every hub that runs with `schedules.fire`. */
  readonly schedules: Scheduler;
  /** Commits MapReduce jobs, or rolls them back. */
  readonly mapreduce: JobCoordinator;
  readonly #options: HubOptions;
  readonly #logger: Logger;
  readonly #dispatcher: Dispatcher;
  readonly #backpressure: QueueBackpressure;
  readonly #recorder: Recorder;
  readonly #retryTimer: RetryTimer;
  readonly #leadership: Leadership;
  readonly #reconciler: Reconciler;
  readonly #retention: Retention | undefined;
  readonly #stop = new AbortController();
  readonly #stopFiring = new AbortController();
  #loops: Promise<unknown>[] = [];
  #sweeper: NodeJS.Timeout | undefined;
  #state: HubState = "created";

  constructor(options: HubOptions) {
    this.#options = options;
    this.store = options.store;
    this.#logger = options.logger ?? silentLogger;
    this.metrics = new HubMetrics(options.metrics, () => options.store.openTaskCounts());
    this.#backpressure = new QueueBackpressure(
      () => this.#dispatcher.republishStale(0),
      this.#logger,
      options.backpressure,
    );
    this.#dispatcher = new Dispatcher(options.store, options.queue, this.#logger, this.#backpressure);
    const budget = options.retryBudget ? new RetryBudget(options.retryBudget.perSecond) : undefined;
    this.#retryTimer = new RetryTimer(async () => {
      // under a budget, the leader alone releases retries: its bucket is the only one
      if (budget && !this.#leadership.isLeader) return { nextRetryInMs: undefined, released: 0, limit: 1 };
      const limit = budget ? Math.min(RETRY_BATCH, budget.available()) : RETRY_BATCH;
      if (limit === 0) return { nextRetryInMs: budget?.waitMs(), released: 0, limit: 1 };
      const released = await this.store.releaseDueRetries(undefined, limit);
      budget?.spend(released.ready.length);
      await this.#recorder.afterCommit(released);
      const next = released.nextRetryInMs;
      return {
        nextRetryInMs: budget && next !== undefined ? Math.max(next, budget.waitMs()) : next,
        released: released.ready.length,
        limit,
      };
    }, this.#logger);
    this.#recorder = new Recorder({
      store: options.store,
      events: options.events,
      queue: options.queue,
      control: options.control,
      dispatcher: this.#dispatcher,
      notifications: this.notifications,
      retryTimer: this.#retryTimer,
      metrics: this.metrics,
      logger: this.#logger,
    });
    this.#leadership = options.leadership ?? new SoleLeader();
    this.#reconciler = new Reconciler(
      {
        store: options.store,
        queue: options.queue,
        events: options.events,
        leadership: this.#leadership,
        publish: (ready) => this.#recorder.afterCommit({ ready, changes: [] }),
        logger: this.#logger,
      },
      options.reconcile,
    );
    this.#retention = options.retention
      ? new Retention(
          { store: options.store, leadership: this.#leadership, logger: this.#logger },
          options.retention,
        )
      : undefined;
    this.schedules = new Scheduler({
      store: options.store,
      publish: (ready) => this.#recorder.afterCommit({ ready, changes: [] }),
      cancelRun: (runId, reason) => this.cancel(runId, reason),
      logger: this.#logger,
      admission: options.admission ?? DEFAULT_ADMISSION,
      ...options.schedules,
    });
    this.mapreduce = new JobCoordinator(
      {
        store: options.store,
        notifications: this.notifications,
        leadership: this.#leadership,
        cancelRun: (runId, reason) => this.cancel(runId, reason),
        logger: this.#logger,
      },
      options.mapreduce,
    );
  }

  /** What submissions, spawns and schedules must meet (admission.ts). */
  get admission(): Admission {
    return this.#options.admission ?? DEFAULT_ADMISSION;
  }

  /** Why new runs are refused now (the queue does not store work), or undefined. */
  get queueRefusal(): string | undefined {
    return this.#backpressure.refusal;
  }

  get isLeader(): boolean {
    return this.#leadership.isLeader;
  }

  /** One pruning pass, now (tests; operators): runs deleted past the retention window. */
  prune(): Promise<number> {
    return this.#retention?.prune() ?? Promise.resolve(0);
  }

  /** One reconciler pass, now (tests; operators). Returns how many tasks were published again. */
  reconcile(): Promise<number> {
    return this.#reconciler.reconcile();
  }

  get state(): HubState {
    return this.#state;
  }

  start(): void {
    if (this.#state !== "created") throw new Error(`cannot start a hub that is ${this.#state}`);
    this.#state = "running";
    const signal = this.#stop.signal;
    this.#loops = [
      keepRunning("the recorder", signal, (s) => this.#recorder.run(s), this.#logger),
      keepRunning("the dead-letter reader", signal, (s) => this.#recorder.runDeadLetters(s), this.#logger),
    ];
    if (this.#options.schedules?.fire ?? true)
      this.#loops.push(this.schedules.run(AbortSignal.any([signal, this.#stopFiring.signal])));
    this.#retryTimer.start();
    this.#leadership.start();
    this.#reconciler.start();
    this.#retention?.start();
    this.mapreduce.start();
    const sweepAfterMs = this.#options.outboxSweepAfterMs ?? 10_000;
    this.#sweeper = setInterval(() => {
      this.#dispatcher
        .republishStale(sweepAfterMs)
        .catch((error: unknown) => this.#logger.warn({ err: error }, "outbox sweep failed"));
    }, sweepAfterMs);
    this.#sweeper.unref();
  }

  /** Validates and records a run of `tenant`; its root tasks are queued at once. */
  async submit(
    spec: RunSpec,
    idempotencyKey = "",
    tenant = "default",
  ): Promise<{ run: RunRecord; existing: boolean }> {
    validateRunSpec(spec, this.admission);
    const refusal = this.#backpressure.refusal;
    if (refusal) throw new TaskframeError(TaskframeErrorCode.Unavailable, refusal);
    const inserted = await this.store.insertRun(spec, idempotencyKey, tenant);
    if (spec.mapreduce && !inserted.existing) {
      try {
        await this.mapreduce.prepare(spec.mapreduce);
      } catch (error) {
        // the leader's sweep tries again if this fails too
        await this.mapreduce.abort(inserted.runId, errorMessage(error)).catch(() => {});
        throw error;
      }
    }
    await this.#recorder.afterCommit({ ready: inserted.ready, changes: [] });
    return { run: await this.store.getRun(inserted.runId), existing: inserted.existing };
  }

  /** Adds children to a running task (dynamic subtasks); those that need no sibling are queued at once. */
  async spawn(request: SpawnRequest): Promise<SpawnedTask[]> {
    checkAdmission(
      request.children.flatMap((child) => (child.spec ? [child.spec] : [])),
      this.admission,
      "spawned children",
    );
    const spawned = await this.store.spawnChildren(request);
    await this.#recorder.afterCommit({ ready: spawned.ready, changes: spawned.changes });
    return spawned.children;
  }

  /** Cancels what has not started and stops what is running. Returns how many tasks were affected. */
  async cancel(runId: string, reason = ""): Promise<number> {
    const cancelled = await this.store.cancelRun(runId, reason);
    if (!cancelled.cancelled) return 0;
    await this.#options.control.publishCancel({
      $typeName: "taskframe.v1.CancelNotice",
      tasks: cancelled.stopping.map((taskId) => ({
        $typeName: "taskframe.v1.StopTarget",
        taskId,
        attempt: 0,
        leaseEpoch: 0n,
        host: "",
      })),
      runIds: [runId],
      reason: reason || "run cancelled",
    });
    await this.#recorder.afterCommit({
      ready: [],
      changes: cancelled.changes,
      finishedRuns: cancelled.finished,
    });
    return cancelled.changes.length + cancelled.stopping.length;
  }

  /** Fires no more schedules (`task dev` stopping); the rest goes on until `stop`. */
  stopFiring(): void {
    this.#stopFiring.abort();
    this.schedules.wake();
  }

  async stop(): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    this.#stop.abort();
    this.schedules.close();
    this.#retryTimer.stop();
    this.#backpressure.stop();
    clearInterval(this.#sweeper);
    await this.#reconciler.stop();
    await this.#retention?.stop();
    await this.mapreduce.stop();
    await this.#leadership.stop();
    await Promise.all(this.#loops);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
