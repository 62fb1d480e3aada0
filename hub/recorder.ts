import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage } from "../core/errors.js";
import type { ControlBus, EventSource, ReceivedEvents } from "../core/event-bus.js";
import type { Logger } from "../core/logger.js";
import { TaskState } from "../core/states.js";
import type { WorkQueue } from "../core/work-queue.js";
import type { HubVerdict } from "./apply-transitions.js";
import type { Dispatcher } from "./dispatcher.js";
import type { HubMetrics } from "./hub-metrics.js";
import type { HubNotifications } from "./notifications.js";
import type { RetryTimer } from "./retry-timer.js";
import type { HubStore } from "./store/hub-store.js";
import type { RecordedEvents } from "./store/queries/record-events.js";

export interface RecorderDeps {
  store: HubStore;
  events: EventSource;
  queue: WorkQueue;
  control: ControlBus;
  dispatcher: Dispatcher;
  notifications: HubNotifications;
  retryTimer: RetryTimer;
  metrics?: HubMetrics;
  logger: Logger;
}

/**
 * Turns what sidecars report into the record: one transaction per batch of
 * events (as large as has accumulated), then, after the commit, publishes the
 * tasks that became ready, stops deliveries that must not run, and tells
 * watchers. A batch is acknowledged only once it is recorded.
 */
export class Recorder {
  constructor(private readonly deps: RecorderDeps) {}

  async run(signal: AbortSignal): Promise<void> {
    for await (const received of this.deps.events.receive(signal)) {
      await this.#recordWithRetry(received, signal);
    }
  }

  /** Items that ran out of deliveries fail their attempt for good: something keeps killing whoever runs them. */
  async runDeadLetters(signal: AbortSignal): Promise<void> {
    for await (const letter of this.deps.queue.deadLetters(signal)) {
      const verdict: HubVerdict = {
        taskId: letter.item.taskId,
        attempt: letter.item.attempt,
        to: TaskState.FAILED,
        detail: `dead letter: delivered ${letter.deliveries} times without a result (the sidecars running it were lost)`,
      };
      const recorded = await this.#retrying(signal, () =>
        this.deps.store.recordEvents([], [], undefined, [verdict]),
      );
      if (recorded) await this.#afterCommitLogged(recorded);
    }
  }

  /** Everything that follows a committed change, whoever made it (recorder, retry timer, submit, cancel). */
  async afterCommit(
    recorded: Pick<RecordedEvents, "ready" | "changes"> & Partial<RecordedEvents>,
  ): Promise<void> {
    const { dispatcher, control, notifications, retryTimer, metrics, logger } = this.deps;
    metrics?.changed(recorded.changes);
    metrics?.published(recorded.ready);
    // Each step on its own: unpublished work stays in the outbox (the sweep sends it), watchers refresh.
    await dispatcher
      .publish(recorded.ready)
      .catch((error: unknown) => logger.warn(`publishing ready work failed: ${errorMessage(error)}`));
    if (recorded.stop?.length) {
      await control
        .publishCancel({
          $typeName: "taskframe.v1.CancelNotice",
          tasks: recorded.stop.map((s) => ({
            $typeName: "taskframe.v1.StopTarget",
            taskId: s.taskId,
            attempt: s.attempt,
            leaseEpoch: BigInt(s.leaseEpoch),
            host: s.host ?? "",
          })),
          runIds: [],
          reason: recorded.stop[0]?.reason ?? "",
        })
        .catch((error: unknown) => logger.warn(`sending stop notices failed: ${errorMessage(error)}`));
    }
    if (recorded.loggedTasks?.size) notifications.emit("logs:recorded", { taskIds: recorded.loggedTasks });
    if (recorded.changes.length) notifications.emit("tasks:changed", { changes: recorded.changes });
    if (recorded.finishedRuns?.length) notifications.emit("runs:finished", { runs: recorded.finishedRuns });
    retryTimer.schedule(recorded.nextRetryInMs);
  }

  async #recordWithRetry(received: ReceivedEvents, signal: AbortSignal): Promise<void> {
    const recorded = await this.#retrying(signal, () =>
      this.deps.store.recordEvents(received.transitions, received.logs),
    );
    if (!recorded) return;
    this.deps.metrics?.recorded(received.transitions.length, recorded.rejected);
    await received.ack().catch((error: unknown) => {
      // they will be delivered again and recorded as no-ops: the record is already right
      this.deps.logger.warn(`could not acknowledge recorded events: ${errorMessage(error)}`);
    });
    await this.#afterCommitLogged(recorded);
  }

  /** Once committed, nothing is lost if a follow-up fails: the outbox sweep republishes, watchers refresh. */
  async #afterCommitLogged(recorded: RecordedEvents): Promise<void> {
    await this.afterCommit(recorded).catch((error: unknown) => {
      this.deps.logger.warn({ err: error }, `after recording: ${errorMessage(error)}`);
    });
  }

  /** The store may be briefly unreachable: keep the batch and try again with backoff until it works or we stop. */
  async #retrying<T>(signal: AbortSignal, attempt: () => Promise<T>): Promise<T | undefined> {
    for (let failures = 0; !signal.aborted; failures++) {
      try {
        return await attempt();
      } catch (error) {
        const delayMs = Math.min(5_000, 50 * 2 ** failures);
        this.deps.logger.error({ err: error, delayMs }, `recording events failed: ${errorMessage(error)}`);
        await sleep(delayMs, undefined, { signal }).catch(() => {});
      }
    }
    return undefined;
  }
}
