import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  type BackfillScheduleRequest,
  type BackfillScheduleResponse,
  BackfillScheduleResponseSchema,
  type ExportDayResponse,
  ExportDayResponseSchema,
  GetAuditResponseSchema,
  GetHostHistoryResponseSchema,
  GetLogsResponseSchema,
  GetRunResponseSchema,
  GetStatsResponseSchema,
  GetTaskResponseSchema,
  type HubService,
  ListHostsResponseSchema,
  ListRunsResponseSchema,
  ListTasksResponseSchema,
  QueryResponseSchema,
  type QueryValueSchema,
  type Run,
  type Task,
  type WatchRunResponse,
  WatchRunResponseSchema,
} from "../../core/gen/taskframe/v1/hub_pb.js";
import { isTerminal, RunState, TaskState } from "../../core/states.js";
import { parseTaskToken } from "../../core/task-token.js";
import { checkOutputSize } from "../admission.js";
import { TenantAccess } from "../auth/access.js";
import type { Hub } from "../hub.js";
import { exportDay } from "../query/export-day.js";
import { type QueryCell, runReadOnlyQuery } from "../query/run-query.js";
import { evaluationToProto, fireToProto } from "../schedules/schedule-proto.js";
import { listHostEvents, listHosts, listProvisioned } from "../store/queries/hosts.js";
import type { StatsRowRecord } from "../store/queries/stats.js";
import type { TaskChange } from "../store/queries/task-change.js";
import { toConnectError } from "./errors.js";
import {
  auditToProto,
  logToProto,
  mapReduceToProto,
  mergeChange,
  runToProto,
  taskToProto,
} from "./to-proto.js";

/** How often a watcher re-reads the store, to catch changes recorded by other hubs. */
const WATCH_REFRESH_MS = 2_000;
/** Changes that arrive within this window travel in one message. */
const WATCH_COALESCE_MS = 50;

/** `access`: the tenant checks (hub/auth/access.ts); without a principal in the context, no restriction. */
export function createHubService(
  hub: Hub,
  access: TenantAccess = new TenantAccess(hub.store),
): ServiceImpl<typeof HubService> {
  const { store } = hub;
  const service: ServiceImpl<typeof HubService> = {
    async submitRun(request, context) {
      if (!request.run) throw new ConnectError("run is required", Code.InvalidArgument);
      const tenant = access.tenantFor(context, request.tenant);
      const { run, existing } = await hub.submit(request.run, request.idempotencyKey, tenant);
      return { run: runToProto(run), existing };
    },
    async getRun(request, context) {
      const runId = await access.runId(context, request.runId);
      const [run, job] = await Promise.all([store.getRun(runId), store.getMapReduceJob(runId)]);
      return create(GetRunResponseSchema, { run: runToProto(run, job) });
    },
    async commitMapReduce(request) {
      const attempt = parseTaskToken(request.taskToken);
      if (!attempt) {
        throw new ConnectError(
          "task_token is malformed: expected TASK_ID:ATTEMPT:LEASE_EPOCH",
          Code.InvalidArgument,
        );
      }
      const fenced = await store.mapReduceCommitAttemptRun(attempt);
      if ("refused" in fenced)
        throw new ConnectError(`cannot commit: ${fenced.refused}`, Code.FailedPrecondition);
      const job = await hub.mapreduce.commit(fenced.runId);
      if (!job) throw new ConnectError("the run is not a MapReduce job", Code.NotFound);
      if (job.state !== "committed") {
        throw new ConnectError(`the job is ${job.state}: ${job.detail}`, Code.FailedPrecondition);
      }
      return { job: mapReduceToProto(job) };
    },
    async listRuns(request, context) {
      const runs = await store.listRuns(
        request.limit || 20,
        request.includeEvaluations,
        access.tenants(context),
      );
      return create(ListRunsResponseSchema, { runs: runs.map((run) => runToProto(run)) });
    },
    async listTasks(request, context) {
      const runId = await access.runId(context, request.runId);
      const [run, tasks, job] = await Promise.all([
        store.getRun(runId),
        store.listTasks(runId, { states: request.states, limit: request.limit }),
        store.getMapReduceJob(runId),
      ]);
      return create(ListTasksResponseSchema, { run: runToProto(run, job), tasks: tasks.map(taskToProto) });
    },
    async getTask(request, context) {
      const task = await access.task(context, request.task ?? {});
      return create(GetTaskResponseSchema, { task: taskToProto(task) });
    },
    watchRun: (request, context) => watchRun(hub, access, request.runId, context),
    getLogs: (request, context) => followLogs(hub, access, request, context),
    async getAudit(request, context) {
      const task = await access.task(context, request.task ?? {});
      const events = await store.readAudit(task.id);
      return create(GetAuditResponseSchema, { task: taskToProto(task), events: events.map(auditToProto) });
    },
    async getTaskStates(request) {
      const states = await store.taskStates(request.taskIds);
      return {
        tasks: states.map((t) => ({
          taskId: t.taskId,
          state: t.state,
          attempt: t.attempt,
          leaseEpoch: BigInt(t.leaseEpoch),
        })),
      };
    },
    async spawnTasks(request) {
      const children = await hub.spawn({
        parentTaskId: request.parentTaskId,
        attempt: request.attempt,
        leaseEpoch: Number(request.leaseEpoch),
        children: request.children,
      });
      return { children };
    },
    async getTaskInput(request) {
      return store.readTaskInput(request.taskId);
    },
    async putTaskOutput(request) {
      checkOutputSize(request.taskId, request.output.byteLength, hub.admission);
      await store.storeTaskOutput({
        taskId: request.taskId,
        attempt: request.attempt,
        leaseEpoch: Number(request.leaseEpoch),
        data: request.output,
        contentType: request.contentType,
      });
      return {};
    },
    async getChildren(request) {
      return { children: await store.readChildren(request.parentTaskId, request.keys) };
    },
    async cancelRun(request, context) {
      const runId = await access.runId(context, request.runId);
      const cancelled = await hub.cancel(runId, request.reason);
      return { run: runToProto(await store.getRun(runId)), cancelledTasks: cancelled };
    },
    async putSchedules(request, context) {
      const tenant = access.tenantFor(context, request.tenant);
      return { schedules: await hub.schedules.put(request.schedules, tenant) };
    },
    async listSchedules(request, context) {
      return { schedules: await hub.schedules.list(request.names, access.tenants(context)) };
    },
    async deleteSchedule(request, context) {
      await access.schedule(context, request.name);
      await hub.schedules.delete(request.name);
      return {};
    },
    async pauseSchedule(request, context) {
      await access.schedule(context, request.name);
      return { schedule: await hub.schedules.pause(request.name, request.reason) };
    },
    async resumeSchedule(request, context) {
      await access.schedule(context, request.name);
      return { schedule: await hub.schedules.resume(request.name) };
    },
    async triggerSchedule(request, context) {
      await access.schedule(context, request.name);
      const runId = await hub.schedules.trigger(request.name);
      return { run: runToProto(await store.getRun(runId)) };
    },
    async getScheduleHistory(request, context) {
      await access.schedule(context, request.name);
      const history = await hub.schedules.history(request.name, request.limit || 50);
      return {
        schedule: history.schedule,
        fires: history.fires.map(fireToProto),
        evaluations: history.evaluations.map(evaluationToProto),
      };
    },
    backfillSchedule: (request, context) => backfill(hub, access, request, context),
    exportDay: (request) => exportBatches(store, request.day),
    async listHosts() {
      const [heard, provisioned] = await Promise.all([
        listHosts(store.database),
        listProvisioned(store.database),
      ]);
      return create(ListHostsResponseSchema, {
        hosts: heard.map((host) => ({
          heartbeat: {
            host: host.name,
            providerHostId: host.provider_host_id,
            pools: host.pools,
            slots: host.slots,
            running: host.running,
            draining: host.draining,
            stopped: host.stopped,
            labels: host.labels,
            startedAtUnixMs: BigInt(Math.round(host.started_at_ms)),
          },
          lastSeenMsAgo: BigInt(Math.max(0, Math.round(host.last_seen_ms_ago))),
        })),
        provisioned: provisioned.map((row) => ({
          token: row.token,
          pool: row.pool,
          provider: row.provider,
          providerHostId: row.provider_host_id ?? "",
          state: row.state,
          createAttempts: row.create_attempts,
          ageMs: BigInt(Math.max(0, Math.round(row.age_ms))),
          detail: row.detail,
        })),
      });
    },
    async getHostHistory(request) {
      const events = await listHostEvents(store.database, {
        ...(request.pool ? { pool: request.pool } : {}),
        limit: request.limit || 100,
      });
      return create(GetHostHistoryResponseSchema, {
        events: events.map((event) => ({
          atUnixMs: BigInt(Math.round(event.at_ms)),
          pool: event.pool,
          token: event.token ?? "",
          providerHostId: event.provider_host_id,
          action: event.action,
          detail: event.detail,
        })),
      });
    },
    async getStats(request) {
      const stats = await store.taskStats({
        sinceMs: Number(request.sinceMs) || 3_600_000,
        by: request.by,
        limit: request.limit || 20,
      });
      const windowSeconds = Math.max(1, (stats.toMs - stats.fromMs) / 1000);
      const row = (r: StatsRowRecord) => ({
        key: r.key,
        tasks: BigInt(r.tasks),
        succeeded: BigInt(r.succeeded),
        failed: BigInt(r.failed),
        retries: BigInt(r.retries),
        perSecond: r.tasks / windowSeconds,
        queueWait: { p50: r.wait[0] ?? 0, p95: r.wait[1] ?? 0, p99: r.wait[2] ?? 0 },
        runTime: { p50: r.run[0] ?? 0, p95: r.run[1] ?? 0, p99: r.run[2] ?? 0 },
      });
      return create(GetStatsResponseSchema, {
        fromUnixMs: BigInt(stats.fromMs),
        toUnixMs: BigInt(stats.toMs),
        total: row(stats.total),
        rows: stats.rows.map(row),
        topFailing: stats.topFailing.map((f) => ({
          name: f.name,
          failed: BigInt(f.failed),
          tasks: BigInt(f.tasks),
          lastDetail: f.last_detail ?? "",
        })),
        timeline: stats.timeline.map((bucket) => ({
          startUnixMs: BigInt(bucket.startMs),
          widthMs: BigInt(Math.round((stats.toMs - stats.fromMs) / stats.timeline.length)),
          succeeded: BigInt(bucket.succeeded),
          failed: BigInt(bucket.failed),
          other: BigInt(bucket.other),
        })),
      });
    },
    async query(request) {
      const result = await runReadOnlyQuery(store.database, request.sql, {
        limit: request.limit,
        timeoutMs: request.timeoutMs,
      });
      return create(QueryResponseSchema, {
        columns: result.columns,
        rows: result.rows.map((row) => ({ values: row.map(queryValue) })),
        truncated: result.truncated,
        durationMs: BigInt(result.durationMs),
      });
    },
  };
  return withErrorMapping(service);
}

function queryValue(cell: QueryCell): MessageInitShape<typeof QueryValueSchema> {
  if (cell === null) return {};
  if (typeof cell === "number") return { kind: { case: "number", value: cell } };
  if (typeof cell === "boolean") return { kind: { case: "boolean", value: cell } };
  return { kind: { case: "text", value: cell } };
}

async function* exportBatches(store: Hub["store"], day: string): AsyncIterable<ExportDayResponse> {
  const encoder = new TextEncoder();
  for await (const batch of exportDay(store.database, day))
    yield create(ExportDayResponseSchema, {
      table: batch.table,
      ndjson: encoder.encode(batch.ndjson),
      rows: batch.rows,
      columns: batch.columns ?? [],
    });
}

async function* backfill(
  hub: Hub,
  access: TenantAccess,
  request: BackfillScheduleRequest,
  context: HandlerContext,
): AsyncIterable<BackfillScheduleResponse> {
  await access.schedule(context, request.name);
  const progress = hub.schedules.backfill(
    request.name,
    Number(request.fromUnixMs),
    Number(request.toUnixMs),
    request.maxSlots,
  );
  for await (const step of progress) yield create(BackfillScheduleResponseSchema, step);
}

/** Every handler maps domain errors to Connect codes at this one boundary. */
function withErrorMapping(service: ServiceImpl<typeof HubService>): ServiceImpl<typeof HubService> {
  const wrapped: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(service) as [string, (...args: unknown[]) => unknown][]) {
    wrapped[name] = (...args: unknown[]) => {
      const result = method(...args);
      if (result && typeof result === "object" && Symbol.asyncIterator in result) {
        return mapStreamErrors(result as AsyncIterable<unknown>);
      }
      return (result as Promise<unknown>).catch((error: unknown) => {
        throw toConnectError(error);
      });
    };
  }
  return wrapped as ServiceImpl<typeof HubService>;
}

async function* mapStreamErrors<T>(stream: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* stream;
  } catch (error) {
    throw toConnectError(error);
  }
}

/** Resolves when `signal` aborts, `ms` pass, or `wake` is called; returns a function to cancel it. */
function waitForWake(signal: AbortSignal, ms: number): { promise: Promise<void>; wake: () => void } {
  let wake: () => void = () => {};
  const promise = new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    wake = done;
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
  return { promise, wake };
}

async function* watchRun(
  hub: Hub,
  access: TenantAccess,
  runIdOrPrefix: string,
  context: HandlerContext,
): AsyncIterable<WatchRunResponse> {
  const { store, notifications } = hub;
  const runId = await access.runId(context, runIdOrPrefix);
  const pending = new Map<string, TaskChange>();
  let finished = false;
  let waiter: { promise: Promise<void>; wake: () => void } | undefined;
  let coalescing: NodeJS.Timeout | undefined;
  const wakeSoon = () => {
    coalescing ??= setTimeout(() => {
      coalescing = undefined;
      waiter?.wake();
    }, WATCH_COALESCE_MS);
  };
  // subscribe before the snapshot, so that nothing recorded in between is missed
  const unsubscribe = [
    notifications.on("tasks:changed", ({ changes }) => {
      for (const change of changes) if (change.runId === runId) pending.set(change.taskId, change);
      if (pending.size > 0) wakeSoon();
    }),
    notifications.on("runs:finished", ({ runs }) => {
      if (runs.some((r) => r.runId === runId)) {
        finished = true;
        waiter?.wake();
      }
    }),
  ];
  try {
    let run = await store.getRun(runId);
    const tasks = new WatchedTasks((await store.listTasks(runId)).map(taskToProto));
    yield create(WatchRunResponseSchema, { run: runToProto(run), tasks: [...tasks.values()] });
    let lastRefresh = Date.now();
    let refreshEveryMs = WATCH_REFRESH_MS;
    while (run.state === RunState.RUNNING && !context.signal.aborted) {
      if (pending.size === 0 && !finished) {
        waiter = waitForWake(context.signal, refreshEveryMs);
        await waiter.promise;
        waiter = undefined;
      }
      const changed = new Set<Task>();
      for (const change of pending.values()) {
        const task = tasks.get(change.taskId);
        if (!task) continue;
        tasks.update(task, () => mergeChange(task, change));
        changed.add(task);
      }
      pending.clear();
      const refresh = finished || Date.now() - lastRefresh >= refreshEveryMs;
      if (refresh) {
        const started = Date.now();
        run = await store.getRun(runId);
        const open = tasks.openIds();
        if (open.length > 0) {
          for (const fresh of await store.listTasks(runId, { ids: open, withNeeds: false })) {
            const held = tasks.get(fresh.id);
            if (!held || (held.state === fresh.state && held.attempt === fresh.attempt)) continue;
            const proto = taskToProto({ ...fresh, needs: held.needs, after: held.after });
            tasks.update(held, () => {
              Object.assign(held, proto);
              held.exitCode = proto.exitCode;
            });
            changed.add(held);
          }
        }
        lastRefresh = Date.now();
        // a refresh reads every open task: on a big run, no more than a twentieth of the time
        refreshEveryMs = Math.max(WATCH_REFRESH_MS, 20 * (lastRefresh - started));
      }
      if (changed.size > 0 || refresh) {
        yield create(WatchRunResponseSchema, { run: tasks.countedRun(run), tasks: [...changed] });
      }
    }
  } finally {
    clearTimeout(coalescing);
    for (const off of unsubscribe) off();
  }
}

/**
 * The tasks a watcher holds, by id, with counts by state kept as they change (a run's counts are
 * in every message: counting a million tasks each time cost more than the rest of the watch).
 */
class WatchedTasks {
  readonly #byId = new Map<string, Task>();
  readonly #counts = new Map<TaskState, number>();
  #open = 0;

  constructor(tasks: readonly Task[]) {
    for (const task of tasks) {
      this.#byId.set(task.id, task);
      this.#count(task, 1);
    }
  }

  get(id: string): Task | undefined {
    return this.#byId.get(id);
  }

  values(): IterableIterator<Task> {
    return this.#byId.values();
  }

  /** Changes a held task in place, keeping the counts. */
  update(task: Task, change: () => void): void {
    this.#count(task, -1);
    change();
    this.#count(task, 1);
  }

  /** Tasks not yet ended. */
  openIds(): string[] {
    const ids: string[] = [];
    if (this.#open === 0) return ids;
    for (const task of this.#byId.values()) if (!isTerminal(task.state)) ids.push(task.id);
    return ids;
  }

  /** The run with counts from the tasks held (they are fresher than the run row). */
  countedRun(run: Parameters<typeof runToProto>[0]): Run {
    const proto = runToProto(run);
    proto.counts = [...this.#counts]
      .filter(([, count]) => count > 0)
      .sort(([a], [b]) => a - b)
      .map(([state, count]) => ({
        $typeName: "taskframe.v1.StateCount",
        state,
        count,
      }));
    return proto;
  }

  #count(task: Task, delta: number): void {
    this.#counts.set(task.state, (this.#counts.get(task.state) ?? 0) + delta);
    if (!isTerminal(task.state)) this.#open += delta;
  }
}

async function* followLogs(
  hub: Hub,
  access: TenantAccess,
  request: {
    task?: { taskId: string; runId: string; name: string };
    attempt: number;
    follow: boolean;
    streams: number[];
  },
  context: HandlerContext,
) {
  const { store, notifications } = hub;
  let task = await access.task(context, request.task ?? {});
  let afterId = 0;
  let waiter: { promise: Promise<void>; wake: () => void } | undefined;
  const unsubscribe = [
    notifications.on("logs:recorded", ({ taskIds }) => {
      if (taskIds.has(task.id)) waiter?.wake();
    }),
    notifications.on("tasks:changed", ({ changes }) => {
      if (changes.some((c) => c.taskId === task.id)) waiter?.wake();
    }),
  ];
  try {
    while (!context.signal.aborted) {
      const chunks = await store.readLogs(task.id, {
        attempt: request.attempt,
        streams: request.streams,
        afterId,
      });
      if (chunks.length > 0) {
        afterId = chunks[chunks.length - 1]!.id;
        yield create(GetLogsResponseSchema, { task: taskToProto(task), entries: chunks.map(logToProto) });
        continue;
      }
      if (!request.follow || isFinished(task, request.attempt)) return;
      waiter = waitForWake(context.signal, 1_000);
      await waiter.promise;
      waiter = undefined;
      task = await store.findTask({ taskId: task.id });
    }
  } finally {
    for (const off of unsubscribe) off();
  }
}

/** Following ends when no more output can come: the task is terminal, or past the attempt asked for. */
function isFinished(task: { state: TaskState; attempt: number }, attempt: number): boolean {
  if (isTerminal(task.state)) return true;
  if (attempt > 0 && task.attempt > attempt) return true;
  return attempt > 0 && task.attempt === attempt && task.state === TaskState.RETRYING;
}
