import { create } from "@bufbuild/protobuf";
import { AsyncQueue } from "./async-queue.js";
import {
  type CancelNotice,
  type EventBatch,
  EventBatchSchema,
  type LogChunk,
  type StateTransition,
} from "./gen/taskframe/v1/messages_pb.js";

/*
 * The event seam: sidecars publish state transitions and log chunks; the
 * hub's recorder consumes them in batches and writes them to the store.
 * In-process here; a JetStream event stream in the distributed mode.
 */
export interface EventSink {
  /** Resolves once the batch is durably accepted (the sidecar acks work only after that). */
  publish(batch: EventBatch): Promise<void>;
}

export interface ReceivedEvents {
  readonly transitions: readonly StateTransition[];
  readonly logs: readonly LogChunk[];
  /** Call after the events are recorded; unacked events are delivered again. */
  ack(): Promise<void>;
}

export interface EventSource {
  /** Batches of events in publish order, as large as have accumulated. Ends when `signal` aborts. */
  receive(signal: AbortSignal): AsyncIterable<ReceivedEvents>;
  /** Events published but not yet recorded (0: the record has caught up with every sidecar). */
  backlog(): Promise<number>;
}

/*
 * The control seam: hub -> every sidecar broadcasts (cancel notices).
 */
export interface ControlBus {
  publishCancel(notice: CancelNotice): Promise<void>;
  cancels(signal: AbortSignal): AsyncIterable<CancelNotice>;
}

/** Events handed over in memory; batches that queue up while the recorder works are merged. */
export class MemoryEventBus implements EventSink, EventSource {
  #queue = new AsyncQueue<EventBatch>();

  constructor(private readonly maxBatchesPerReceive = 256) {}

  async publish(batch: EventBatch): Promise<void> {
    this.#queue.push(batch);
  }

  async *receive(signal: AbortSignal): AsyncIterable<ReceivedEvents> {
    while (!signal.aborted) {
      const batches = await this.#queue.take(this.maxBatchesPerReceive, { signal });
      if (batches === undefined) return;
      if (batches.length === 0) continue;
      yield {
        transitions: batches.flatMap((b) => b.transitions),
        logs: batches.flatMap((b) => b.logs),
        ack: async () => {},
      };
    }
  }

  async backlog(): Promise<number> {
    return this.#queue.size;
  }

  close(): void {
    this.#queue.close();
  }
}

export class MemoryControlBus implements ControlBus {
  #subscribers = new Set<AsyncQueue<CancelNotice>>();

  async publishCancel(notice: CancelNotice): Promise<void> {
    for (const subscriber of this.#subscribers) subscriber.push(notice);
  }

  async *cancels(signal: AbortSignal): AsyncIterable<CancelNotice> {
    const queue = new AsyncQueue<CancelNotice>();
    this.#subscribers.add(queue);
    try {
      while (!signal.aborted) {
        const notices = await queue.take(Number.POSITIVE_INFINITY, { signal });
        if (notices === undefined) return;
        yield* notices;
      }
    } finally {
      this.#subscribers.delete(queue);
    }
  }

  close(): void {
    for (const subscriber of this.#subscribers) subscriber.close();
  }
}

export const eventBatch = (transitions: StateTransition[], logs: LogChunk[] = []): EventBatch =>
  create(EventBatchSchema, { transitions, logs });
