import { create } from "@bufbuild/protobuf";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import {
  type Assignment,
  ChildSpecSchema,
  type Completion,
  CompletionSchema,
  type LogLine,
  LogLineSchema,
  RunnerService,
  type TaskProgress,
  TaskProgressSchema,
} from "../../core/gen/taskframe/v1/runner_pb.js";
import { TaskSpecSchema } from "../../core/gen/taskframe/v1/spec_pb.js";
import { LogStream, TaskState } from "../../core/gen/taskframe/v1/state_pb.js";
import type { SpawnChild, TaskContext } from "./context.js";
import { ChildFailedError, describeError } from "./errors.js";

/** A handler: its return value is the task's result (bytes as is, strings as text, anything else as JSON). */
export type Handler = (context: TaskContext) => unknown | Promise<unknown>;

export interface WorkerOptions {
  handlers: Record<string, Handler>;
  /** Tasks run at once. @default 16 */
  concurrency?: number;
  /** The sidecar's unix socket. @default env TASKFRAME_SOCKET */
  socket?: string;
  /** Or its TCP address, e.g. http://127.0.0.1:7071. @default env TASKFRAME_RUNNER_URL */
  url?: string;
  name?: string;
  labels?: Record<string, string>;
}

export const SDK_VERSION = "0.1.0";


interface Running {
  readonly assignment: Assignment;
  readonly abort: AbortController;
}

/**
 * A long-lived worker: registers its handlers with the sidecar on this host,
 * receives assignments over one stream, and reports results, logs and
 * heartbeats in batches.
 *
 *   const worker = new Worker({ handlers: { resize: async (ctx) => resize(ctx.input) } });
 *   await worker.run(); // until worker.stop() or the sidecar ends the stream
 */
export class Worker {
  readonly #options: WorkerOptions;
  readonly #client: Client<typeof RunnerService>;
  readonly #running = new Map<string, Running>();
  readonly #stop = new AbortController();
  #workerId = "";
  #completions: Completion[] = [];
  #lines: LogLine[] = [];
  #flushScheduled = false;
  #flushing: Promise<void> = Promise.resolve();

  constructor(options: WorkerOptions) {
    if (Object.keys(options.handlers).length === 0) throw new Error("a worker needs at least one handler");
    this.#options = options;
    this.#client = createClient(RunnerService, transportFor(options));
  }

  get workerId(): string {
    return this.#workerId;
  }

  /** Registers, then serves assignments until stop() (or the sidecar ends the stream). */
  async run(): Promise<void> {
    const registered = await this.#client.register({
      language: "typescript",
      sdkVersion: SDK_VERSION,
      handlers: Object.keys(this.#options.handlers),
      maxConcurrency: this.#options.concurrency ?? 16,
      labels: this.#options.labels ?? {},
      name: this.#options.name ?? `ts-${process.pid}`,
    });
    this.#workerId = registered.workerId;
    const heartbeatMs = Math.max(100, Number(registered.heartbeatIntervalMs) || 5_000);
    const heartbeats = setInterval(() => void this.#heartbeat(), heartbeatMs);
    try {
      for await (const message of this.#client.assignments({ workerId: this.#workerId })) {
        // assignments first: a cancel may be about an assignment in the same message
        for (const assignment of message.assignments) void this.#execute(assignment);
        for (const cancel of message.cancels) {
          this.#running.get(cancel.taskId)?.abort.abort(new Error(cancel.reason || "cancelled"));
        }
      }
    } finally {
      clearInterval(heartbeats);
      await this.#flush();
    }
  }

  /** Asks the sidecar for no more work; run() returns once the tasks in hand are reported. */
  async stop(): Promise<void> {
    if (this.#stop.signal.aborted || !this.#workerId) return;
    this.#stop.abort(new Error("the worker is stopping"));
    await this.#client.drain({ workerId: this.#workerId });
  }

  async #execute(assignment: Assignment): Promise<void> {
    const abort = new AbortController();
    this.#running.set(assignment.taskId, { assignment, abort });
    const deadline = Number(assignment.deadlineUnixMs);
    const signals = [abort.signal];
    if (deadline > 0) signals.push(AbortSignal.timeout(Math.max(0, deadline - Date.now())));
    const handler = this.#options.handlers[assignment.handler];
    const identity = { taskId: assignment.taskId, attempt: assignment.attempt, leaseEpoch: assignment.leaseEpoch };
    let completion: Completion;
    try {
      if (!handler) throw new Error(`no handler '${assignment.handler}' in this worker`);
      const result = await handler(this.#context(assignment, AbortSignal.any(signals)));
      const [output, contentType] = encodeResult(result);
      completion = create(CompletionSchema, { ...identity, result: { case: "output", value: output }, outputContentType: contentType });
    } catch (error) {
      const described = describeError(error);
      completion = create(CompletionSchema, {
        ...identity,
        result: {
          case: "error",
          value: {
            type: described.type,
            message: described.message,
            nonRetryable: described.nonRetryable,
            retryAfterMs: BigInt(described.retryAfterMs),
          },
        },
      });
    }
    this.#running.delete(assignment.taskId);
    this.#completions.push(completion);
    this.#scheduleFlush();
  }

  #context(assignment: Assignment, signal: AbortSignal): TaskContext {
    const identity = { taskId: assignment.taskId, attempt: assignment.attempt, leaseEpoch: assignment.leaseEpoch };
    return {
      taskId: assignment.taskId,
      runId: assignment.runId,
      taskName: assignment.taskName,
      attempt: assignment.attempt,
      input: assignment.input,
      contentType: assignment.contentType,
      traceparent: assignment.traceparent,
      signal,
      text: () => Buffer.from(assignment.input).toString("utf8"),
      json: <T>() => JSON.parse(Buffer.from(assignment.input).toString("utf8")) as T,
      log: (line, stream = "stdout") => {
        this.#lines.push(
          create(LogLineSchema, {
            ...identity,
            stream: stream === "stderr" ? LogStream.STDERR : LogStream.STDOUT,
            text: line,
            atUnixMs: BigInt(Date.now()),
          }),
        );
        this.#scheduleFlush();
      },
      heartbeat: (progress, message) => {
        void this.#client
          .heartbeat({
            workerId: this.#workerId,
            tasks: [create(TaskProgressSchema, { ...identity, progress: progress ?? -1, message: message ?? "" })],
          })
          .catch(() => {});
      },
      spawn: async (children) => {
        const response = await this.#client.spawn({ workerId: this.#workerId, ...identity, children: children.map(childSpec) });
        return response.children;
      },
      children: async (keys = []) =>
        (await this.#client.children({ workerId: this.#workerId, ...identity, keys: [...keys] })).children,
      awaitChildren: async (keys = [], { failOnError = true } = {}) => {
        for (let waitMs = 20; ; waitMs = Math.min(1_000, waitMs * 2)) {
          const { children } = await this.#client.children({ workerId: this.#workerId, ...identity, keys: [...keys] });
          if (children.every((c) => c.settled)) {
            const failed = children.filter((c) => c.state !== TaskState.SUCCEEDED || c.subtreeFailed);
            if (failOnError && failed.length > 0) {
              throw new ChildFailedError(
                failed.map((c) => ({
                  name: c.name,
                  state: c.subtreeFailed && c.state === TaskState.SUCCEEDED ? "SUCCEEDED, but a task it spawned did not" : TaskState[c.state],
                  detail: c.detail,
                })),
              );
            }
            return children;
          }
          await sleep(waitMs, signal);
        }
      },
    };
  }

  async #heartbeat(): Promise<void> {
    if (this.#running.size === 0) return;
    const tasks: TaskProgress[] = [...this.#running.values()].map(({ assignment }) =>
      create(TaskProgressSchema, {
        taskId: assignment.taskId,
        attempt: assignment.attempt,
        leaseEpoch: assignment.leaseEpoch,
        progress: -1,
      }),
    );
    try {
      const { lostTaskIds } = await this.#client.heartbeat({ workerId: this.#workerId, tasks });
      for (const taskId of lostTaskIds) this.#running.get(taskId)?.abort.abort(new Error("the task's lease was lost"));
    } catch {
      // the stream's end tells us if the sidecar is gone
    }
  }

  #scheduleFlush(): void {
    // one call of each kind is in flight at a time: what finishes meanwhile goes in the next one
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      void this.#flush();
    });
  }

  /** Sends what is queued, one call of each kind at a time: logs before the results they precede. */
  #flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      const lines = this.#lines.splice(0);
      const completions = this.#completions.splice(0);
      if (lines.length > 0) await this.#client.log({ workerId: this.#workerId, lines }).catch(() => {});
      if (completions.length > 0) await this.#client.complete({ workerId: this.#workerId, completions });
    });
    return this.#flushing;
  }
}

function transportFor(options: WorkerOptions): Transport {
  const url = options.url ?? process.env.TASKFRAME_RUNNER_URL;
  if (url) return createConnectTransport({ baseUrl: url, httpVersion: "1.1" });
  const socketPath = options.socket ?? process.env.TASKFRAME_SOCKET;
  if (!socketPath) {
    throw new Error("no sidecar to connect to: set TASKFRAME_SOCKET (or TASKFRAME_RUNNER_URL), or pass socket");
  }
  return createConnectTransport({ baseUrl: "http://sidecar", httpVersion: "1.1", nodeOptions: { socketPath } });
}

/** A handler result with an explicit content type: `return new Output(bytes, "image/png")`. */
export class Output {
  constructor(
    readonly data: Uint8Array,
    readonly contentType: string,
  ) {}
}

function encodeResult(result: unknown): [Uint8Array, string] {
  if (result === undefined || result === null) return [new Uint8Array(), ""];
  if (result instanceof Output) return [result.data, result.contentType];
  if (result instanceof Uint8Array) return [result, "application/octet-stream"];
  if (typeof result === "string") return [Buffer.from(result, "utf8"), "text/plain; charset=utf-8"];
  return [Buffer.from(JSON.stringify(result), "utf8"), "application/json"];
}

function childSpec(child: SpawnChild) {
  const input = child.input;
  const [bytes, contentType] =
    input === undefined ? [new Uint8Array(), ""] : encodeResult(input);
  const target = child.handler
    ? { case: "handler" as const, value: { handler: child.handler, input: bytes, contentType } }
    : { case: "exec" as const, value: { command: child.command ?? "", args: child.args ?? [] } };
  return create(ChildSpecSchema, {
    key: child.key,
    spec: create(TaskSpecSchema, {
      name: child.key,
      target,
      needs: child.needs ?? [],
      retry: { retries: child.retries ?? 0 },
      timeoutMs: BigInt(child.timeoutMs ?? 0),
    }),
  });
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", abort, { once: true });
  });
}
