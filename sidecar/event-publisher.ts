import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { errorMessage } from "../core/errors.js";
import type { EventSink } from "../core/event-bus.js";
import {
  EventBatchSchema,
  type LogChunk,
  type StateTransition,
} from "../core/gen/taskframe/v1/messages_pb.js";
import type { Logger } from "../core/logger.js";
import { TaskState } from "../core/states.js";

interface Waiter {
  resolve: () => void;
}

/**
 * Batches a sidecar's events: one batch in flight at a time, and what queues
 * up meanwhile (or within `flushMs`, when set) travels in the next
 * EventBatch, in order. Under load batches grow by themselves; when idle an
 * event leaves at once. A transition's promise resolves once its batch is
 * accepted by the sink, which is when the sidecar may ack the work it describes.
 */
export class EventPublisher {
  #transitions: StateTransition[] = [];
  /** Where each queued RUNNING transition sits in #transitions, by task, attempt and lease epoch. */
  #queuedRunning = new Map<string, number>();
  #logs: LogChunk[] = [];
  #waiters: Waiter[] = [];
  #timer: { cancel(): void } | undefined;
  #flushing: Promise<void> | undefined;
  #closed = false;

  constructor(
    private readonly sink: EventSink,
    private readonly logger: Logger,
    private readonly flushMs = 0,
  ) {}

  /**
   * Queues a transition; resolves when it has been published. An outcome whose
   * RUNNING is still queued takes its place, carrying its start time: one
   * event instead of two for attempts shorter than a flush.
   */
  transition(transition: StateTransition): Promise<void> {
    const key = `${transition.taskId}/${transition.attempt}/${transition.leaseEpoch}`;
    const running = transition.to === TaskState.RUNNING ? undefined : this.#queuedRunning.get(key);
    if (running === undefined) {
      if (transition.to === TaskState.RUNNING) this.#queuedRunning.set(key, this.#transitions.length);
      this.#transitions.push(transition);
    } else {
      this.#queuedRunning.delete(key);
      transition.startedAtUnixMs = this.#transitions[running]!.atUnixMs;
      this.#transitions[running] = transition;
    }
    const published = new Promise<void>((resolve) => this.#waiters.push({ resolve }));
    this.#schedule();
    return published;
  }

  logs(chunks: readonly LogChunk[]): void {
    if (chunks.length === 0) return;
    this.#logs.push(...chunks);
    this.#schedule();
  }

  /** Publishes everything queued so far. */
  async flush(): Promise<void> {
    this.#cancelTimer();
    while (this.#flushing) await this.#flushing;
    if (this.#transitions.length === 0 && this.#logs.length === 0) return;
    this.#flushing = this.#publishQueued().finally(() => {
      this.#flushing = undefined;
    });
    await this.#flushing;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  #schedule(): void {
    if (this.#timer || this.#closed) return;
    const fire = () => {
      this.#timer = undefined;
      void this.flush();
    };
    if (this.flushMs > 0) {
      const timeout = setTimeout(fire, this.flushMs);
      this.#timer = { cancel: () => clearTimeout(timeout) };
    } else {
      const immediate = setImmediate(fire);
      this.#timer = { cancel: () => clearImmediate(immediate) };
    }
  }

  #cancelTimer(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  async #publishQueued(): Promise<void> {
    const batch = create(EventBatchSchema, { transitions: this.#transitions, logs: this.#logs });
    const waiters = this.#waiters;
    this.#transitions = [];
    this.#queuedRunning.clear();
    this.#logs = [];
    this.#waiters = [];
    // Events are the record: never drop them, retry until the sink takes them.
    for (let failures = 0; ; failures++) {
      try {
        await this.sink.publish(batch);
        break;
      } catch (error) {
        const delayMs = Math.min(5_000, 50 * 2 ** failures);
        this.logger.error({ delayMs }, `publishing events failed: ${errorMessage(error)}`);
        await sleep(delayMs);
      }
    }
    for (const waiter of waiters) waiter.resolve();
    if (this.#transitions.length > 0 || this.#logs.length > 0) this.#schedule();
  }
}
