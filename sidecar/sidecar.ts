import { hostname } from "node:os";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Registry } from "prom-client";
import { type ConnectListener, listenConnect } from "../core/connect-listener.js";
import { errorMessage } from "../core/errors.js";
import type { ControlBus, EventSink } from "../core/event-bus.js";
import type {
  CancelNotice,
  LogChunk,
  StateTransition,
  WorkItem,
} from "../core/gen/taskframe/v1/messages_pb.js";
import { RunnerService } from "../core/gen/taskframe/v1/runner_pb.js";
import type { InstallSpec, TaskSpec } from "../core/gen/taskframe/v1/spec_pb.js";
import { keepRunning } from "../core/keep-running.js";
import { type Logger, silentLogger } from "../core/logger.js";
import { packagePath } from "../core/package-root.js";
import { TaskState } from "../core/states.js";
import { DEFAULT_POOL, type Lease, type WorkQueue } from "../core/work-queue.js";
import { logChunksOf, type ReportedResult, transitionOf } from "./attempt-report.js";
import { type AttemptTrace, startAttemptTrace } from "./attempt-trace.js";
import { cancelNoticeMatcher } from "./cancel-notice.js";
import { EventPublisher } from "./event-publisher.js";
import type { InstalledSet } from "./install/install-cache.js";
import { attemptKey, commandMissing, type Jail, type JailedAttempt, JailRefusal } from "./jail/jail.js";
import { LeaseKeeper } from "./lease-keeper.js";
import { type CapturedChunk, LogCapture } from "./log-capture.js";
import { type AttemptResult, resultOf, withRetryPolicy } from "./outcome.js";
import { runPreChecks, unenforcedSettings } from "./pre-checks.js";
import { type ProcessOutcome, runProcess } from "./process-runner.js";
import { HandlerRunner, type PayloadStore } from "./runner/handler-runner.js";
import { createRunnerService, type ReadChildren, type SpawnTasks } from "./runner/runner-service.js";
import { SidecarMetrics } from "./sidecar-metrics.js";
import { Slots } from "./slots.js";
import type { ProcessLauncher } from "./spawner/spawner.js";
import { taskEnvironment } from "./task-env.js";

/** The largest Runner protocol message a worker may send (the hub takes outputs up to 64 MiB by default). */
const RUNNER_READ_MAX_BYTES = 128 * 2 ** 20;

export interface SidecarOptions {
  queue: WorkQueue;
  events: EventSink;
  control: ControlBus;
  /** Pools to lease from; their tasks share the slots. @default ["default"] */
  pools?: readonly string[];
  /** Name recorded with every attempt. @default os.hostname() */
  host?: string;
  /** Tasks that may run at once. @default 8 per core */
  slots: number;
  /** Extend leases this often; at most a third of the queue's ack wait. */
  heartbeatMs: number;
  /** The queue's ack wait: a lease not extended for this long is presumed lost. @default 3 × heartbeatMs */
  ackWaitMs?: number;
  /** SIGTERM -> SIGKILL grace on timeout or cancel. @default 5_000 */
  killGraceMs?: number;
  /** Output kept per attempt. @default 16 MiB */
  logMaxBytes?: number;
  /** @default 64 KiB */
  logChunkBytes?: number;
  /** How often output is cut into chunks and sent. @default 100 */
  logFlushMs?: number;
  /** What starts task processes: a Spawner's `run` (cheap forks), or in-process `runProcess` by default. */
  launch?: ProcessLauncher;
  /** Jails executables and applies their limits; without one they run as the sidecar's user, unlimited. */
  jail?: Jail;
  /** Installs executables' declared dependencies (`[Install]`) before they run. */
  installs?: DependencyInstaller;
  /**
   * Serve the Runner protocol to SDK workers on this unix socket (and,
   * optionally, a local TCP port): handler tasks run there.
   */
  runner?: RunnerEndpoint;
  /**
   * Where tasks stand (the hub's GetTaskStates). Asked only for redelivered
   * or republished work: an item whose attempt has already ended is acked
   * without running it again.
   */
  taskStates?: TaskStateLookup;
  /** The hub's address for tasks' own `task spawn` calls (TASKFRAME_HUB); `unix:PATH` for a socket. */
  hubUrl?: string;
  /** The CA file that an https:// hub is trusted by, for tasks' own `task spawn` calls (TASKFRAME_HUB_TLS_CA). */
  hubTlsCa?: string;
  /** Loader/interpreter variables (core/forbidden-env.ts) tasks may set; the rest are stripped. @default none */
  allowEnv?: readonly string[];
  /** Signs each task's TASKFRAME_TASK_TOKEN (shared with the hub; core/task-token.ts). @default unsigned */
  taskTokenSecret?: Uint8Array;
  /** Where running tasks' children go (the hub): handlers spawn through the Runner protocol. */
  spawnTasks?: SpawnTasks;
  /** Claim checks for handler payloads too large for one NATS message (the hub). */
  payloads?: PayloadStore;
  /** Where running tasks' children stand (the hub), for handlers that await them. */
  readChildren?: ReadChildren;
  /** Where the sidecar's Prometheus metrics go (none when absent). */
  metrics?: Registry;
  logger?: Logger;
}

/**
 * - `created`   constructed
 * - `running`   leasing and executing
 * - `draining`  no new leases; in-flight tasks finish or are handed back
 * - `stopped`   every task, timer and loop ended
 */
export type SidecarState = "created" | "running" | "draining" | "stopped";

export interface RunnerEndpoint {
  socketPath: string;
  tcp?: { host: string; port: number };
  /** How often workers send heartbeats. @default 5_000 */
  heartbeatIntervalMs?: number;
}

export type TaskStateLookup = (
  taskIds: readonly string[],
) => Promise<readonly { taskId: string; state: TaskState; attempt: number }[]>;

interface RunningAttempt {
  readonly item: WorkItem;
  readonly epoch: number;
  readonly capture: LogCapture;
  readonly stop: AbortController;
  stopReason: string;
  /** Set when the sidecar itself is shutting down: hand the work back instead of reporting. */
  handBack: boolean;
  /** Set when the lease went a whole ack wait without being extended: the work may be someone else's now. */
  leaseLost?: string;
  readonly trace: AttemptTrace;
}

/** Remember cancelled runs this long, to skip work of theirs still in the queue. */
const CANCELLED_RUN_MEMORY_MS = 10 * 60_000;

/** The per-host agent: leases work from its pools, runs it, reports every state change and all output. */
export class Sidecar implements AsyncDisposable {
  readonly host: string;
  readonly pools: readonly string[];
  readonly #options: SidecarOptions;
  readonly #logger: Logger;
  readonly #slots: Slots;
  readonly #publisher: EventPublisher;
  readonly #leases: LeaseKeeper;
  readonly #allowEnv: ReadonlySet<string>;
  readonly #running = new Map<string, RunningAttempt>();
  readonly #metrics: SidecarMetrics | undefined;
  readonly #cancelledRuns = new Map<string, number>();
  readonly #halt = new AbortController();
  readonly #launch: ProcessLauncher;
  readonly #logMaxBytes: number;
  #loops: Promise<void>[] = [];
  #handlerRunner: HandlerRunner | undefined;
  #runnerListeners: ConnectListener[] = [];
  #logTicker: NodeJS.Timeout | undefined;
  #state: SidecarState = "created";

  constructor(options: SidecarOptions) {
    this.#options = options;
    this.host = options.host ?? hostname();
    this.pools = options.pools?.length ? options.pools : [DEFAULT_POOL];
    this.#logger = options.logger ?? silentLogger;
    this.#slots = new Slots(options.slots);
    this.#publisher = new EventPublisher(options.events, this.#logger);
    this.#leases = new LeaseKeeper(options.heartbeatMs, this.#logger, options.ackWaitMs);
    this.#allowEnv = new Set(options.allowEnv ?? []);
    this.#launch = options.launch ?? launchInProcess;
    this.#logMaxBytes = options.logMaxBytes ?? 16 * 2 ** 20;
    this.#metrics = options.metrics
      ? new SidecarMetrics(options.metrics, () => this.#running.size)
      : undefined;
  }

  get state(): SidecarState {
    return this.#state;
  }

  /** Tasks running right now. */
  get busy(): number {
    return this.#running.size;
  }

  /** Where SDK workers connect (TASKFRAME_SOCKET), once started. */
  get runnerAddresses(): string[] {
    return this.#runnerListeners.map((l) => l.address);
  }

  /** SDK workers registered with this sidecar. */
  get workers(): HandlerRunner["workers"] {
    return this.#handlerRunner?.workers ?? [];
  }

  /** Handlers that registered workers serve. */
  get handlers(): string[] {
    return this.#handlerRunner?.handlers ?? [];
  }

  /**
   * Starts leasing; with a Runner endpoint, first opens it, so that workers
   * can register as soon as this returns.
   */
  async start(): Promise<void> {
    if (this.#state !== "created") throw new Error(`cannot start a sidecar that is ${this.#state}`);
    this.#state = "running";
    const endpoint = this.#options.runner;
    if (endpoint) {
      const runner = new HandlerRunner({
        queue: this.#options.queue,
        publisher: this.#publisher,
        leases: this.#leases,
        pools: this.pools,
        host: this.host,
        logger: this.#logger,
        killGraceMs: this.#options.killGraceMs ?? 5_000,
        logMaxBytes: this.#logMaxBytes,
        logChunkBytes: this.#options.logChunkBytes ?? 64 * 2 ** 10,
        heartbeatIntervalMs: endpoint.heartbeatIntervalMs ?? 5_000,
        skip: (lease) => this.#shouldSkip(lease),
        ...(this.#options.payloads ? { payloads: this.#options.payloads } : {}),
      });
      this.#handlerRunner = runner;
      const handler = connectNodeAdapter({
        // workers are on this host: compressing their traffic would only cost CPU on both ends
        acceptCompression: [],
        // a worker's message (a batch of results, the largest) above this is refused, not read whole
        readMaxBytes: RUNNER_READ_MAX_BYTES,
        routes: (router) =>
          router.service(
            RunnerService,
            createRunnerService(runner, {
              spawnTasks: this.#options.spawnTasks,
              readChildren: this.#options.readChildren,
            }),
          ),
      });
      this.#runnerListeners.push(await listenConnect(handler, { socketPath: endpoint.socketPath }));
      // jailed workers run as another account and reach it through a bind mount
      await this.#options.jail?.shareSocket(endpoint.socketPath, this.host);
      if (endpoint.tcp) this.#runnerListeners.push(await listenConnect(handler, endpoint.tcp));
    }
    this.#startLeasing();
  }

  #startLeasing(): void {
    this.#leases.start();
    this.#logTicker = setInterval(() => this.#shipLogs(), this.#options.logFlushMs ?? 100);
    this.#logTicker.unref();
    const signal = this.#halt.signal;
    const leasing = this.pools.map((pool) => this.#leaseLoop(pool, signal));
    const control = keepRunning(
      "the cancel-notice listener",
      signal,
      (s) => this.#controlLoop(s),
      this.#logger,
    );
    this.#loops = [...leasing, control].map((loop) =>
      loop.catch((error: unknown) => this.#logger.error({ err: error }, "sidecar loop failed")),
    );
  }

  /**
   * Stops leasing, waits up to `graceMs` for running tasks to finish, then
   * stops the rest and hands their work back to the queue (it is delivered
   * again, elsewhere or later; the audit records the redelivery).
   */
  async stop(graceMs = 0): Promise<void> {
    if (this.#state === "stopped" || this.#state === "draining") return;
    this.#state = "draining";
    this.#halt.abort();
    await Promise.all(this.#loops);
    await this.#handlerRunner?.stop(graceMs);
    await Promise.all(this.#runnerListeners.map((l) => l.close(1_000)));
    if (this.#running.size > 0) {
      const timer = setTimeout(() => {
        for (const attempt of this.#running.values()) {
          attempt.handBack = true;
          attempt.stop.abort();
        }
      }, graceMs);
      await this.#slots.drained();
      clearTimeout(timer);
    }
    clearInterval(this.#logTicker);
    this.#leases.stop();
    await this.#publisher.close();
    this.#state = "stopped";
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /** One per pool; the pools share the slots: each loop reserves the free ones before it fetches. */
  async #leaseLoop(pool: string, signal: AbortSignal): Promise<void> {
    const consumer = this.#options.queue.consumer(pool);
    while (!signal.aborted) {
      await this.#slots.waitForFree(signal);
      if (signal.aborted) return;
      const reserved = this.#slots.free;
      this.#slots.take(reserved);
      let leases: Lease[];
      try {
        leases = await consumer.fetch(reserved, { signal, maxWaitMs: 1_000 });
      } catch (error) {
        this.#slots.release(reserved);
        this.#logger.error({ err: error, pool }, `leasing work failed: ${errorMessage(error)}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      this.#slots.release(reserved - leases.length);
      for (const lease of leases) {
        this.#leases.track(lease);
        void this.#runLease(lease)
          .catch((error: unknown) =>
            this.#logger.error({ err: error, taskId: lease.item.taskId }, "attempt failed"),
          )
          .finally(() => this.#slots.release());
      }
    }
  }

  async #controlLoop(signal: AbortSignal): Promise<void> {
    for await (const notice of this.#options.control.cancels(signal)) {
      this.#applyCancel(notice);
      this.#handlerRunner?.applyCancel(notice);
    }
  }

  #applyCancel(notice: CancelNotice): void {
    const now = performance.now();
    for (const runId of notice.runIds) this.#cancelledRuns.set(runId, now + CANCELLED_RUN_MEMORY_MS);
    const targeted = cancelNoticeMatcher(notice, this.host);
    for (const attempt of this.#running.values()) {
      if (targeted(attempt) && !attempt.stop.signal.aborted) {
        attempt.stopReason = notice.reason || "cancelled";
        attempt.stop.abort();
      }
    }
  }

  async #runLease(lease: Lease): Promise<void> {
    try {
      if (await this.#shouldSkip(lease)) {
        await lease.ack();
        return;
      }
      if (this.#leases.lost(lease)) {
        // checking it took longer than the ack wait: the queue may have given it to another sidecar
        this.#logger.warn(
          { taskId: lease.item.taskId, attempt: lease.item.attempt },
          "lease lost before the task started (checking the redelivery took longer than the queue's ack wait): not run here",
        );
        return;
      }
      await this.#runAttempt(lease);
    } finally {
      this.#leases.untrack(lease);
    }
  }

  async #runAttempt(lease: Lease): Promise<void> {
    const { item } = lease;
    const options = this.#options;
    const attempt: RunningAttempt = {
      item,
      epoch: lease.epoch,
      capture: new LogCapture({
        maxBytes: options.logMaxBytes ?? 16 * 2 ** 20,
        chunkBytes: options.logChunkBytes ?? 64 * 2 ** 10,
      }),
      stop: new AbortController(),
      stopReason: "",
      handBack: false,
      trace: startAttemptTrace(item, this.host),
    };
    this.#running.set(item.taskId, attempt);
    this.#leases.track(lease, (silentMs) => this.#abandon(attempt, silentMs));
    if (lease.delivery > 1) this.#metrics?.redelivered();
    const startedMs = performance.now();
    try {
      void this.#publisher.transition(
        this.#transition(attempt, TaskState.RUNNING, { signal: "", detail: "" }),
      );
      const result = await this.#execute(attempt);
      const leaseLost = attempt.leaseLost ?? (this.#leases.lost(lease) ? "lease lost" : undefined);
      if (leaseLost && result.state === TaskState.CANCELLED) {
        // stopped here because the lease was lost: nothing to report, and no ack (NATS would take it for the new holder's)
        attempt.trace.end(TaskState.PENDING, leaseLost);
        return;
      }
      if (attempt.handBack) {
        attempt.trace.end(TaskState.PENDING, "handed back");
        await lease.nak();
        return;
      }
      if (result.systemLine) attempt.capture.closeWith(result.systemLine);
      this.#publisher.logs(this.#logChunks(attempt, attempt.capture.takeChunks(true)));
      await this.#publisher.transition(this.#transition(attempt, result.state, result));
      this.#metrics?.ended(result.state, (performance.now() - startedMs) / 1000);
      attempt.trace.end(result.state, result.detail);
      // a result reported under a lost lease is the fence's to judge; its ack would count for the new holder
      if (!leaseLost) await lease.ack();
    } finally {
      attempt.trace.end(TaskState.FAILED, "the attempt ended without a result");
      this.#running.delete(item.taskId);
    }
  }

  /**
   * The attempt's lease went a whole ack wait without being extended (this
   * process was paused or starved): another sidecar may hold the work now.
   * Its execution here is stopped; a stopped execution reports nothing.
   */
  #abandon(attempt: RunningAttempt, silentMs: number): void {
    if (attempt.leaseLost) return;
    attempt.leaseLost = `lease lost: not extended for ${Math.round(silentMs)} ms, longer than the queue's ack wait (this sidecar was paused or overloaded)`;
    this.#logger.warn({ taskId: attempt.item.taskId, attempt: attempt.item.attempt }, attempt.leaseLost);
    attempt.stopReason = attempt.leaseLost;
    // after pending I/O: a process that ended while this one was paused reports its own end, not a kill
    setImmediate(() => attempt.stop.abort());
  }

  /** Work that must not run: its run was cancelled while it waited, or a redelivered attempt already ended. */
  async #shouldSkip(lease: Lease): Promise<boolean> {
    const cancelledUntil = this.#cancelledRuns.get(lease.item.runId);
    if (cancelledUntil !== undefined && cancelledUntil > performance.now()) return true;
    const mayHaveRun = lease.delivery > 1 || lease.item.dispatch > 1 || lease.deliveryCountUncertain === true;
    return mayHaveRun && (await this.#alreadyEnded(lease.item));
  }

  /** Whether a redelivered item's attempt has ended (elsewhere): if the hub cannot say, run it; the fence decides. */
  async #alreadyEnded(item: WorkItem): Promise<boolean> {
    if (!this.#options.taskStates) return false;
    try {
      const [current] = await this.#options.taskStates([item.taskId]);
      if (!current) return false;
      const open = current.state === TaskState.PENDING || current.state === TaskState.RUNNING;
      const ended = current.attempt !== item.attempt || !open;
      if (ended) {
        this.#logger.info(
          { taskId: item.taskId, attempt: item.attempt },
          "redelivered work whose attempt already ended was acked without running",
        );
      }
      return ended;
    } catch (error) {
      this.#logger.warn(
        { taskId: item.taskId },
        `could not check a redelivered task: ${errorMessage(error)}`,
      );
      return false;
    }
  }

  async #execute(attempt: RunningAttempt): Promise<AttemptResult> {
    const spec = attempt.item.spec;
    if (spec?.target.case !== "exec") {
      const detail = "a handler task reached the executables lane, where nothing runs handlers";
      return { state: TaskState.FAILED, signal: "", detail, systemLine: `[taskframe] ${detail}` };
    }
    const exec = spec.target.value;
    const timeoutMs = Number(spec.timeoutMs);
    const killGraceMs = this.#options.killGraceMs ?? 5_000;
    const hubUrl = this.#options.hubUrl;
    const cwd = exec.cwd || process.cwd();
    const taskEnv = taskEnvironment(attempt.item, this.host, attempt.epoch, {
      allowEnv: this.#allowEnv,
      ...(hubUrl
        ? {
            hub: {
              url: hubUrl,
              taskTokenSecret: this.#options.taskTokenSecret,
              ...(this.#options.hubTlsCa ? { tlsCa: this.#options.hubTlsCa } : {}),
            },
          }
        : {}),
    });
    let env = taskEnv.env;
    const { stripped } = taskEnv;
    if (stripped.length > 0)
      attempt.capture.system(
        `[taskframe] env not set: ${stripped.join(", ")} (loader, interpreter or Taskframe variables this sidecar does not allow; see --allow-env)`,
      );
    env.TRACEPARENT = attempt.trace.traceparent;
    const installed = await this.#install(spec, attempt, cwd);
    if ("state" in installed) return installed;
    if (installed.pathPrepend.length > 0)
      env = { ...env, ...installed.env, PATH: [...installed.pathPrepend, env.PATH].join(":") };
    else Object.assign(env, installed.env);
    if (!this.#options.jail && (spec.jail || spec.privateNetwork)) {
      const detail = `${spec.jail ? `Jail=${spec.jail}` : "PrivateNetwork=yes"} asked for, but this sidecar runs tasks without a jail`;
      return { state: TaskState.CHECK_FAILED, signal: "", detail, systemLine: `[taskframe] ${detail}` };
    }
    let jailed: JailedAttempt | undefined;
    try {
      jailed = await this.#options.jail?.prepare({
        spec,
        cwd,
        host: this.host,
        key: attemptKey(attempt.item.taskId, attempt.item.attempt),
        runId: attempt.item.runId,
        ...(hubUrl?.startsWith("unix:") ? { hubSocket: hubUrl.slice("unix:".length) } : {}),
        readOnly: installed.readOnlyPaths,
      });
    } catch (error) {
      const refused = error instanceof JailRefusal;
      const detail = refused ? error.message : `could not set up the task's jail: ${errorMessage(error)}`;
      const state = refused ? TaskState.CHECK_FAILED : TaskState.FAILED;
      return { state, signal: "", detail, systemLine: `[taskframe] ${detail}` };
    }
    // one time budget for checks and command (installs are the cache's, shared with other tasks)
    const deadline = timeoutMs > 0 ? performance.now() + timeoutMs : undefined;
    try {
      if (jailed) env = jailed.env(env);
      for (const note of jailed?.notes ?? []) attempt.capture.system(note);
      const ignored = jailed ? [] : unenforcedSettings(spec);
      if (ignored.length > 0)
        attempt.capture.system(
          `[taskframe] note: ${ignored.join(", ")} not enforced: this sidecar has no jail`,
        );
      const launch = async (command: string, args: readonly string[]): Promise<ProcessOutcome> => {
        if (jailed && jailed.profile !== "none" && commandMissing(command, cwd, env.PATH))
          return notFound(command);
        const wrapped = jailed ? jailed.wrap(command, args) : { command, args: [...args] };
        const outcome = await this.#launch({
          outputLimitBytes: Math.max(0, this.#logMaxBytes - attempt.capture.capturedBytes),
          command: wrapped.command,
          args: wrapped.args,
          env,
          cwd,
          timeoutMs: deadline === undefined ? 0 : Math.max(1, Math.round(deadline - performance.now())),
          killGraceMs,
          signal: attempt.stop.signal,
          onOutput: (stream, data) => attempt.capture.append(stream, data),
          ...("confine" in wrapped && wrapped.confine ? { confine: wrapped.confine } : {}),
        });
        attempt.capture.addDropped(outcome.droppedOutputBytes);
        return outcome;
      };
      const stopped = await runPreChecks(spec, (check) => launch(check.command, check.args), {
        timeoutMs,
        killGraceMs,
        stopReason: () => attempt.stopReason,
      });
      const result =
        stopped ??
        resultOf(
          await launch(
            exec.builtin ? packagePath("bin", "task") : exec.command,
            exec.builtin ? [exec.command, ...exec.args] : exec.args,
          ),
          timeoutMs,
          killGraceMs,
          attempt.stopReason,
        );
      // what the kernel counted is read before the cgroups go; the attempt ends when nothing of it is left running
      const classified = withRetryPolicy(
        jailed ? jailed.classify(result) : result,
        spec.retry?.nonRetryableExitCodes ?? [],
      );
      await jailed?.release();
      return classified;
    } finally {
      await jailed?.release();
    }
  }

  /** Installs the task's declared dependencies; an install that fails ends the attempt CHECK_FAILED. */
  async #install(
    spec: TaskSpec,
    attempt: RunningAttempt,
    cwd: string,
  ): Promise<InstalledSet | AttemptResult> {
    const install = spec.install;
    const none: InstalledSet = { key: "", dir: "", env: {}, pathPrepend: [], readOnlyPaths: [] };
    if (
      !install ||
      !(
        install.pip.length ||
        install.npm.length ||
        install.apt.length ||
        install.from ||
        install.artifacts.length
      )
    )
      return none;
    const installs = this.#options.installs;
    if (!installs) {
      const detail = "[Install] is declared but this sidecar has no install cache";
      return { state: TaskState.CHECK_FAILED, signal: "", detail, systemLine: `[taskframe] ${detail}` };
    }
    try {
      return await installs.ensure(install, {
        cwd,
        log: (line) => attempt.capture.system(`[install] ${line}`),
        signal: attempt.stop.signal,
      });
    } catch (error) {
      const detail = `install failed: ${errorMessage(error)}`;
      return { state: TaskState.CHECK_FAILED, signal: "", detail, systemLine: `[taskframe] ${detail}` };
    }
  }

  #transition(attempt: RunningAttempt, to: TaskState, result: ReportedResult): StateTransition {
    return transitionOf(attempt, this.host, to, result);
  }

  /** One timer for every running task: cut what each has written into chunks and send them. */
  #shipLogs(): void {
    for (const attempt of this.#running.values()) {
      const chunks = attempt.capture.takeChunks();
      if (chunks.length > 0) this.#publisher.logs(this.#logChunks(attempt, chunks));
    }
    const now = performance.now();
    for (const [runId, until] of this.#cancelledRuns) if (until <= now) this.#cancelledRuns.delete(runId);
  }

  #logChunks(attempt: RunningAttempt, chunks: readonly CapturedChunk[]): LogChunk[] {
    return logChunksOf(attempt, chunks);
  }
}

/** What a jail's missing command looks like: the spawn error the spawner gives outside one. */
function notFound(command: string): ProcessOutcome {
  return {
    pid: undefined,
    exitCode: null,
    signal: null,
    timedOut: false,
    cancelled: false,
    spawnError: { code: "ENOENT", message: `${command}: command not found` },
    startedAtMs: Date.now(),
    durationMs: 0,
  };
}

/** Installs an executable's `[Install]` set (see sidecar/install). */
export interface DependencyInstaller {
  ensure(
    spec: InstallSpec,
    context: { cwd: string; log: (line: string) => void; signal: AbortSignal },
  ): Promise<InstalledSet>;
}

const launchInProcess: ProcessLauncher = async (options) => ({
  ...(await runProcess(options)),
  droppedOutputBytes: 0,
});
