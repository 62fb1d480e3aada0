import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { AsyncQueue } from "../../core/async-queue.js";
import { errorMessage, TaskframeError, TaskframeErrorCode } from "../../core/errors.js";
import { type CancelNotice, WorkItemSchema } from "../../core/gen/taskframe/v1/messages_pb.js";
import {
  type Assignment,
  AssignmentSchema,
  type CancelAssignment,
  CancelAssignmentSchema,
  type Completion,
  type LogLine,
  type Receipt,
  ReceiptSchema,
  type RegisterRequest,
  type TaskProgress,
} from "../../core/gen/taskframe/v1/runner_pb.js";
import { LogStream } from "../../core/gen/taskframe/v1/state_pb.js";
import type { Logger } from "../../core/logger.js";
import { TaskState } from "../../core/states.js";
import { WakeUp } from "../../core/wake-up.js";
import type { Lease, WorkQueue } from "../../core/work-queue.js";
import { type Delivery, logChunksOf, type ReportedResult, transitionOf } from "../attempt-report.js";
import { type AttemptTrace, startAttemptTrace } from "../attempt-trace.js";
import { cancelNoticeMatcher } from "../cancel-notice.js";
import type { EventPublisher } from "../event-publisher.js";
import type { LeaseKeeper } from "../lease-keeper.js";
import { LogCapture } from "../log-capture.js";

/** Where payloads too large for one message go (the hub), and from what size. */
export interface PayloadStore {
  /** Outputs larger than this are stored through `storeOutput` before the result is reported. */
  inlineOutputBytes: number;
  fetchInput(taskId: string): Promise<{ input: Uint8Array; contentType: string }>;
  storeOutput(output: {
    taskId: string;
    attempt: number;
    leaseEpoch: number;
    data: Uint8Array;
    contentType: string;
  }): Promise<void>;
}

/** How long a leased task waits for a busy worker before it is handed back to the queue. */
const WAIT_FOR_ROOM_MS = 5_000;

/** What a worker's Assignments stream carries in one message. */
export interface WorkerMessage {
  assignments: Assignment[];
  cancels: CancelAssignment[];
}

/** A handler task handed to a worker and not finished yet. */
interface HandlerAttempt extends Delivery {
  /** The delivery this attempt answers to; replaced if the queue redelivers it to us while it runs. */
  lease: Lease;
  readonly worker: Worker;
  readonly capture: LogCapture;
  /** performance.now() at which the handler must stop; undefined: no deadline. */
  readonly deadline: number | undefined;
  /** Set once the attempt is asked to stop: why, and when to give up waiting for the worker. */
  stopping?: { reason: string; outcome: TaskState.CANCELLED | TaskState.TIMED_OUT; giveUpAt: number };
  readonly trace: AttemptTrace;
}

class Worker {
  readonly inFlight = new Map<string, HandlerAttempt>();
  readonly outbox = new AsyncQueue<Assignment | CancelAssignment>();
  draining = false;
  streaming = false;

  constructor(
    readonly id: string,
    readonly name: string,
    readonly language: string,
    readonly handlers: ReadonlySet<string>,
    readonly maxConcurrency: number,
  ) {}

  get free(): number {
    return this.draining ? 0 : Math.max(0, this.maxConcurrency - this.inFlight.size);
  }

  get label(): string {
    return `${this.name || this.language || "worker"} (${this.id.slice(0, 8)})`;
  }
}

export interface HandlerRunnerOptions {
  queue: WorkQueue;
  publisher: EventPublisher;
  leases: LeaseKeeper;
  pools: readonly string[];
  host: string;
  logger: Logger;
  killGraceMs: number;
  logMaxBytes: number;
  logChunkBytes: number;
  heartbeatIntervalMs: number;
  /** Claim checks for payloads too large for the queue and event messages (distributed mode: the hub). */
  payloads?: PayloadStore;
  /** Whether a leased item must not run (its run was cancelled, or a redelivered attempt already ended). */
  skip: (lease: Lease) => Promise<boolean>;
}

/** Raised to the Runner service for calls that name a worker this sidecar does not know. */
export class UnknownWorkerError extends Error {
  override name = "UnknownWorkerError";
}

/**
 * The sidecar's side of the Runner protocol: registered workers, a lease
 * loop per (pool, handler) that leases only as many items as the workers
 * serving that handler have room for, and the reports that come back. Every
 * report is checked against the assignment it names (task, attempt, lease
 * epoch); one that is not this worker's current assignment is refused, and
 * still forwarded so that the hub records the rejection.
 */
export class HandlerRunner {
  readonly #workers = new Map<string, Worker>();
  readonly #lanes = new Map<string, Promise<void>>();
  /** Room for more work may have opened up: every lane re-checks (one lane's notice is not enough). */
  readonly #capacity = new WakeUp();
  readonly #halt = new AbortController();
  #ticker: NodeJS.Timeout | undefined;

  constructor(private readonly options: HandlerRunnerOptions) {
    this.#ticker = setInterval(() => this.#tick(), 100);
    this.#ticker.unref();
  }

  /** Handlers served by at least one worker that takes work. */
  get handlers(): string[] {
    const served = new Set<string>();
    for (const worker of this.#workers.values())
      if (!worker.draining) for (const h of worker.handlers) served.add(h);
    return [...served].sort();
  }

  /** Registered workers, by the name they gave (with their language and tasks in hand). */
  get workers(): { name: string; language: string; inFlight: number; draining: boolean }[] {
    return [...this.#workers.values()].map((w) => ({
      name: w.name,
      language: w.language,
      inFlight: w.inFlight.size,
      draining: w.draining,
    }));
  }

  get busy(): number {
    let count = 0;
    for (const worker of this.#workers.values()) count += worker.inFlight.size;
    return count;
  }

  register(request: RegisterRequest): { workerId: string; heartbeatIntervalMs: number } {
    const handlers = new Set(request.handlers.filter(Boolean));
    if (handlers.size === 0) throw new Error("a worker must serve at least one handler");
    const worker = new Worker(
      randomUUID(),
      request.name,
      request.language,
      handlers,
      Math.max(1, request.maxConcurrency),
    );
    this.#workers.set(worker.id, worker);
    for (const handler of handlers) for (const pool of this.options.pools) this.#ensureLane(pool, handler);
    this.options.logger.info(
      { worker: worker.label, handlers: [...handlers], concurrency: worker.maxConcurrency },
      "worker registered",
    );
    return { workerId: worker.id, heartbeatIntervalMs: this.options.heartbeatIntervalMs };
  }

  /** The worker's Assignments stream; when it ends without a drain, the worker is lost. */
  async *stream(workerId: string, signal: AbortSignal): AsyncIterable<WorkerMessage> {
    const worker = this.#worker(workerId);
    if (worker.streaming) throw new Error(`worker ${worker.label} already has an Assignments stream`);
    worker.streaming = true;
    this.#capacity.notify();
    try {
      while (!signal.aborted) {
        const items = await worker.outbox.take(Number.POSITIVE_INFINITY, { signal });
        if (items === undefined) return; // drained: the stream ends normally
        if (items.length === 0) continue;
        const message: WorkerMessage = { assignments: [], cancels: [] };
        for (const item of items) {
          if (item.$typeName === "taskframe.v1.Assignment") message.assignments.push(item);
          else message.cancels.push(item);
        }
        yield message;
      }
    } finally {
      worker.streaming = false;
      if (!worker.draining || worker.inFlight.size > 0) await this.#lose(worker, "its connection closed");
      this.#workers.delete(worker.id);
      this.#capacity.notify();
    }
  }

  async complete(workerId: string, completions: readonly Completion[]): Promise<Receipt[]> {
    const worker = this.#worker(workerId);
    const receipts: Receipt[] = [];
    const finishing: Promise<void>[] = [];
    for (const completion of completions) {
      const attempt = this.#current(worker, completion);
      if (!attempt) {
        receipts.push(this.#refuse(worker, completion, "completion"));
        continue;
      }
      const result = completion.result;
      let state: TaskState;
      let report: ReportedResult;
      const pastDeadline = attempt.deadline !== undefined && performance.now() >= attempt.deadline;
      if (attempt.stopping) {
        state = attempt.stopping.outcome;
        report = { signal: "", detail: attempt.stopping.reason };
      } else if (result.case === "error" && pastDeadline) {
        // the SDK stopped the handler at its deadline before this sidecar did
        state = TaskState.TIMED_OUT;
        report = {
          signal: "",
          detail: `deadline exceeded (${result.value.type || "Error"}: ${result.value.message})`,
        };
      } else if (result.case === "error") {
        const error = result.value;
        state = TaskState.FAILED;
        report = {
          signal: "",
          detail: `${error.type || "Error"}: ${error.message}`,
          nonRetryable: error.nonRetryable,
          retryAfterMs: Number(error.retryAfterMs),
        };
        attempt.capture.system(`[taskframe] ${report.detail}${error.nonRetryable ? " (not retryable)" : ""}`);
      } else {
        state = TaskState.SUCCEEDED;
        const output = result.case === "output" ? result.value : new Uint8Array();
        report = { signal: "", detail: "", output, outputContentType: completion.outputContentType };
        if (output.length > (this.options.payloads?.inlineOutputBytes ?? Number.POSITIVE_INFINITY)) {
          try {
            await this.options.payloads!.storeOutput({
              taskId: attempt.item.taskId,
              attempt: attempt.item.attempt,
              leaseEpoch: attempt.epoch,
              data: output,
              contentType: completion.outputContentType,
            });
            report = {
              signal: "",
              detail: "",
              outputStored: true,
              outputContentType: completion.outputContentType,
            };
          } catch (error) {
            state = TaskState.FAILED;
            report = {
              signal: "",
              detail: `its output (${output.length} bytes) could not be stored: ${errorMessage(error)}`,
            };
            attempt.capture.system(`[taskframe] ${report.detail}`);
          }
        }
      }
      receipts.push(create(ReceiptSchema, { taskId: completion.taskId, accepted: true }));
      // not awaited one by one: the batch's transitions then travel in one event message
      finishing.push(this.#finish(attempt, state, report));
    }
    await Promise.all(finishing);
    return receipts;
  }

  heartbeat(workerId: string, tasks: readonly TaskProgress[]): string[] {
    const worker = this.#worker(workerId);
    const lost: string[] = [];
    for (const progress of tasks) {
      const attempt = this.#current(worker, progress);
      if (!attempt || attempt.stopping) {
        lost.push(progress.taskId);
        continue;
      }
      if (progress.message || progress.progress >= 0) {
        const percent = progress.progress >= 0 ? `${Math.round(progress.progress * 100)}%` : "";
        attempt.capture.system(
          `[taskframe] progress ${[percent, progress.message].filter(Boolean).join(" ")}`,
        );
      }
    }
    return lost;
  }

  log(workerId: string, lines: readonly LogLine[]): void {
    const worker = this.#worker(workerId);
    for (const line of lines) {
      const attempt = this.#current(worker, line);
      if (!attempt) continue; // a late line of an assignment that ended: nothing to attach it to
      const text = line.text.endsWith("\n") ? line.text : `${line.text}\n`;
      const stream = line.stream === LogStream.STDERR ? "stderr" : "stdout";
      attempt.capture.append(stream, Buffer.from(text, "utf8"));
    }
  }

  drain(workerId: string): void {
    const worker = this.#worker(workerId);
    worker.draining = true;
    if (worker.inFlight.size === 0) worker.outbox.close();
  }

  /** A cancel notice from the hub: ask the workers running those deliveries to stop. */
  applyCancel(notice: CancelNotice): void {
    const targeted = cancelNoticeMatcher(notice, this.options.host);
    for (const worker of this.#workers.values()) {
      for (const attempt of worker.inFlight.values()) {
        if (targeted(attempt)) this.#stop(attempt, notice.reason || "cancelled", TaskState.CANCELLED);
      }
    }
  }

  /** Stops leasing, lets workers finish for up to `graceMs`, hands back what is left, ends every stream. */
  async stop(graceMs: number): Promise<void> {
    this.#halt.abort();
    this.#capacity.close();
    await Promise.all(this.#lanes.values());
    for (const worker of this.#workers.values()) worker.draining = true;
    const deadline = Date.now() + graceMs;
    while (this.busy > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    for (const worker of this.#workers.values()) {
      for (const attempt of [...worker.inFlight.values()]) {
        worker.inFlight.delete(attempt.item.taskId);
        this.options.leases.untrack(attempt.lease);
        await attempt.lease.nak().catch(() => {}); // handed back: delivered again elsewhere or later
      }
      worker.outbox.close();
    }
    clearInterval(this.#ticker);
  }

  #worker(workerId: string): Worker {
    const worker = this.#workers.get(workerId);
    if (!worker)
      throw new UnknownWorkerError(
        `unknown worker '${workerId}': register first (or again, after a restart)`,
      );
    return worker;
  }

  /** Throws unless the worker holds this assignment now: what a worker does for a task is fenced like its results. */
  assertHolds(workerId: string, report: { taskId: string; attempt: number; leaseEpoch: bigint }): void {
    const worker = this.#worker(workerId);
    if (this.#current(worker, report)) return;
    const held = worker.inFlight.get(report.taskId);
    throw new TaskframeError(
      TaskframeErrorCode.Stale,
      held
        ? `stale request: this worker holds attempt ${held.item.attempt} of task ${report.taskId} with lease epoch ${held.epoch}, not attempt ${report.attempt} with lease epoch ${report.leaseEpoch}`
        : `stale request: task ${report.taskId} is not assigned to this worker`,
    );
  }

  /** The worker's current assignment that a report names, if the report is about it. */
  #current(
    worker: Worker,
    report: { taskId: string; attempt: number; leaseEpoch: bigint },
  ): HandlerAttempt | undefined {
    const attempt = worker.inFlight.get(report.taskId);
    if (!attempt || attempt.item.attempt !== report.attempt || attempt.epoch !== Number(report.leaseEpoch))
      return undefined;
    return attempt;
  }

  /**
   * Refuses a report that is not the worker's. One about a task the worker holds in another attempt or
   * lease goes to the hub, which records the rejection in the task's audit trail; one about a task the
   * worker does not hold at all is only logged here: its id cannot be trusted to name a task.
   */
  #refuse(worker: Worker, completion: Completion, what: string): Receipt {
    const held = worker.inFlight.get(completion.taskId);
    if (!held) {
      const reason = `stale ${what}: task ${completion.taskId} is not assigned to this worker (it ended, moved elsewhere, or was never assigned)`;
      this.options.logger.warn({ worker: worker.label, taskId: completion.taskId }, reason);
      return create(ReceiptSchema, { taskId: completion.taskId, accepted: false, reason });
    }
    const reason =
      `stale ${what}: this worker holds attempt ${held.item.attempt} with lease epoch ${held.epoch}, ` +
      `not attempt ${completion.attempt} with lease epoch ${completion.leaseEpoch}`;
    const claimed: Delivery = {
      item: create(WorkItemSchema, {
        taskId: completion.taskId,
        runId: held.item.runId,
        attempt: completion.attempt,
      }),
      epoch: Number(completion.leaseEpoch),
    };
    const to = completion.result.case === "error" ? TaskState.FAILED : TaskState.SUCCEEDED;
    void this.options.publisher.transition(
      transitionOf(claimed, this.options.host, to, { signal: "", detail: `from ${worker.label}: ${reason}` }),
    );
    return create(ReceiptSchema, { taskId: completion.taskId, accepted: false, reason });
  }

  #ensureLane(pool: string, handler: string): void {
    const key = `${pool}/${handler}`;
    if (this.#lanes.has(key) || this.#halt.signal.aborted) return;
    this.#lanes.set(
      key,
      this.#leaseLoop(pool, handler).catch((error: unknown) =>
        this.options.logger.error({ err: error, pool, handler }, "handler lease loop failed"),
      ),
    );
  }

  /** Leases a lane's items only as far as the workers serving its handler have room. */
  async #leaseLoop(pool: string, handler: string): Promise<void> {
    const consumer = this.options.queue.consumer(pool, handler);
    const signal = this.#halt.signal;
    const waiting: { lease: Lease; since: number }[] = [];
    while (!signal.aborted) {
      await this.#assignWaiting(handler, waiting);
      const room = this.#room(handler) - waiting.length;
      if (room <= 0) {
        await this.#capacity.wait({ signal, maxWaitMs: 1_000 });
        continue;
      }
      let leases: Lease[];
      try {
        leases = await consumer.fetch(room, { signal, maxWaitMs: 1_000 });
      } catch (error) {
        this.options.logger.error({ pool, handler }, `leasing handler work failed: ${errorMessage(error)}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      for (const lease of leases) {
        this.options.leases.track(lease); // the ack wait runs from the delivery
        await this.#assign(handler, lease, waiting);
      }
    }
    for (const { lease } of waiting.splice(0)) {
      this.options.leases.untrack(lease);
      await lease.nak().catch(() => {});
    }
  }

  /**
   * Leases that found every worker busy (another lane of the same workers took the room first) wait
   * here, their leases kept, instead of going back to the queue: a nak would count as a delivery, and
   * a task handed back often enough would be dead-lettered without ever having run. One that waits
   * longer than WAIT_FOR_ROOM_MS (its workers are gone) is handed back for another sidecar.
   */
  async #assignWaiting(handler: string, waiting: { lease: Lease; since: number }[]): Promise<void> {
    const now = performance.now();
    while (waiting.length > 0) {
      const next = waiting[0]!;
      if (this.#pickWorker(handler)) {
        waiting.shift();
        await this.#assign(handler, next.lease, waiting);
      } else if (now - next.since > WAIT_FOR_ROOM_MS) {
        waiting.shift();
        this.options.leases.untrack(next.lease);
        await next.lease.nak().catch(() => {});
      } else return;
    }
  }

  #room(handler: string): number {
    let room = 0;
    for (const worker of this.#workers.values())
      if (worker.streaming && worker.handlers.has(handler)) room += worker.free;
    return room;
  }

  async #assign(handler: string, lease: Lease, waiting: { lease: Lease; since: number }[]): Promise<void> {
    if (this.#adopt(lease)) return;
    if (await this.options.skip(lease)) {
      this.options.leases.untrack(lease);
      await lease.ack();
      return;
    }
    const worker = this.#pickWorker(handler);
    if (!worker) {
      waiting.push({ lease, since: performance.now() });
      return;
    }
    const spec = lease.item.spec;
    let target = spec?.target.case === "handler" ? spec.target.value : undefined;
    if (lease.item.inputElided && target) {
      try {
        if (!this.options.payloads) throw new Error("this sidecar has no hub to fetch it from");
        const fetched = await this.options.payloads.fetchInput(lease.item.taskId);
        target = { ...target, input: fetched.input, contentType: fetched.contentType };
      } catch (error) {
        this.options.logger.warn(
          { taskId: lease.item.taskId },
          `cannot fetch a large input; handing the task back: ${errorMessage(error)}`,
        );
        this.options.leases.untrack(lease);
        await lease.nak();
        return;
      }
    }
    const timeoutMs = Number(spec?.timeoutMs ?? 0n);
    const attempt: HandlerAttempt = {
      item: lease.item,
      epoch: lease.epoch,
      lease,
      worker,
      capture: new LogCapture({ maxBytes: this.options.logMaxBytes, chunkBytes: this.options.logChunkBytes }),
      deadline: timeoutMs > 0 ? performance.now() + timeoutMs : undefined,
      trace: startAttemptTrace(lease.item, this.options.host),
    };
    worker.inFlight.set(lease.item.taskId, attempt);
    void this.options.publisher.transition(
      transitionOf(attempt, this.options.host, TaskState.RUNNING, {
        signal: "",
        detail: `handler ${handler} on ${worker.label}`,
      }),
    );
    worker.outbox.push(
      create(AssignmentSchema, {
        taskId: lease.item.taskId,
        runId: lease.item.runId,
        taskName: spec?.name ?? "",
        attempt: lease.item.attempt,
        leaseEpoch: BigInt(lease.epoch),
        handler,
        input: target?.input ?? new Uint8Array(),
        contentType: target?.contentType ?? "",
        deadlineUnixMs: BigInt(timeoutMs > 0 ? Date.now() + timeoutMs : 0),
        traceparent: attempt.trace.traceparent,
      }),
    );
  }

  /**
   * The queue handed back an attempt that one of our workers is still running: its lease ran out
   * before we extended it (this process was too busy for a whole ack wait). Running it twice would
   * be wrong, so the running attempt follows the new delivery (and keeps the lease epoch it reports
   * under, which is the one the hub recorded when it started).
   */
  #adopt(lease: Lease): boolean {
    for (const worker of this.#workers.values()) {
      const running = worker.inFlight.get(lease.item.taskId);
      if (!running || running.item.attempt !== lease.item.attempt) continue;
      this.options.logger.warn(
        { taskId: lease.item.taskId, attempt: lease.item.attempt, delivery: lease.delivery },
        "the lease of a running handler task ran out and the task came back: it keeps running, under the new delivery",
      );
      this.options.leases.untrack(running.lease);
      running.lease = lease;
      return true;
    }
    return false;
  }

  #pickWorker(handler: string): Worker | undefined {
    let best: Worker | undefined;
    for (const worker of this.#workers.values()) {
      if (!worker.streaming || !worker.handlers.has(handler) || worker.free === 0) continue;
      if (!best || worker.free > best.free) best = worker;
    }
    return best;
  }

  /** Asks the worker to stop an assignment; if it does not answer within the grace period, it is ended here. */
  #stop(attempt: HandlerAttempt, reason: string, outcome: TaskState.CANCELLED | TaskState.TIMED_OUT): void {
    if (attempt.stopping) return;
    attempt.stopping = { reason, outcome, giveUpAt: performance.now() + this.options.killGraceMs };
    attempt.capture.system(`[taskframe] asked ${attempt.worker.label} to stop: ${reason}`);
    attempt.worker.outbox.push(
      create(CancelAssignmentSchema, {
        taskId: attempt.item.taskId,
        attempt: attempt.item.attempt,
        leaseEpoch: BigInt(attempt.epoch),
        reason,
      }),
    );
  }

  /** Records an attempt's end (logs first, then the transition), then acks its lease. */
  async #finish(attempt: HandlerAttempt, state: TaskState, report: ReportedResult): Promise<void> {
    const { worker } = attempt;
    worker.inFlight.delete(attempt.item.taskId);
    attempt.trace.end(state, report.detail);
    this.options.leases.untrack(attempt.lease);
    this.options.publisher.logs(logChunksOf(attempt, attempt.capture.takeChunks(true)));
    await this.options.publisher.transition(transitionOf(attempt, this.options.host, state, report));
    await attempt.lease.ack().catch((error: unknown) => {
      this.options.logger.warn(
        { taskId: attempt.item.taskId },
        `acking a finished handler task failed: ${errorMessage(error)}`,
      );
    });
    if (worker.draining && worker.inFlight.size === 0) worker.outbox.close();
    this.#capacity.notify();
  }

  /** A worker is gone with work in hand: each of its attempts fails (and is retried by its policy). */
  async #lose(worker: Worker, why: string): Promise<void> {
    const attempts = [...worker.inFlight.values()];
    if (attempts.length > 0) {
      this.options.logger.warn({ worker: worker.label, tasks: attempts.length }, `worker lost: ${why}`);
    }
    await Promise.all(
      attempts.map((attempt) => {
        const detail = `worker lost: ${worker.label} ${why} while running it`;
        attempt.capture.system(`[taskframe] ${detail}`);
        const state = attempt.stopping ? attempt.stopping.outcome : TaskState.FAILED;
        return this.#finish(attempt, state, { signal: "", detail: attempt.stopping?.reason ?? detail });
      }),
    );
  }

  /** One timer for every handler attempt: ship logs, enforce deadlines, give up on unanswered stops. */
  #tick(): void {
    const now = performance.now();
    for (const worker of this.#workers.values()) {
      for (const attempt of [...worker.inFlight.values()]) {
        const chunks = attempt.capture.takeChunks();
        if (chunks.length > 0) this.options.publisher.logs(logChunksOf(attempt, chunks));
        if (attempt.deadline !== undefined && now >= attempt.deadline && !attempt.stopping) {
          this.#stop(attempt, "deadline exceeded", TaskState.TIMED_OUT);
        }
        if (attempt.stopping && now >= attempt.stopping.giveUpAt) {
          const { outcome, reason } = attempt.stopping;
          attempt.capture.system(
            `[taskframe] ${attempt.worker.label} did not stop in time; the attempt ends here`,
          );
          void this.#finish(attempt, outcome, { signal: "", detail: reason });
        }
      }
    }
  }
}
