import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  smallint,
  text,
  timestamp,
  unique,
  uuid,
} from "drizzle-orm/pg-core";
import { EvaluationOutcome, FireOutcome } from "../../core/gen/taskframe/v1/schedule_pb.js";
import { TaskState } from "../../core/gen/taskframe/v1/state_pb.js";

/*
 * The hub's record. Postgres (or embedded PGlite) is the source of truth for
 * which tasks exist and what state they are in; the work queue only delivers.
 *
 * Hot-path tables (task_events, log_chunks, outbox) carry no foreign keys:
 * they are append-only, written in multi-row batches, and will be partitioned
 * by day; a per-row FK lookup would cost more than it protects.
 */

const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => "bytea",
});

const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

/** The TaskState enum as a table (like the seed's `status` table), seeded from proto at start. */
export const taskStates = pgTable("task_states", {
  id: smallint("id").primaryKey(),
  name: text("name").notNull().unique(),
});

export const runStates = pgTable("run_states", {
  id: smallint("id").primaryKey(),
  name: text("name").notNull().unique(),
});

export const runs = pgTable(
  "runs",
  {
    id: uuid("id").primaryKey(),
    name: text("name").notNull(),
    state: smallint("state")
      .notNull()
      .references(() => runStates.id),
    source: text("source").notNull().default(""),
    labels: jsonb("labels").$type<Record<string, string>>().notNull().default({}),
    idempotencyKey: text("idempotency_key").unique(),
    totalTasks: integer("total_tasks").notNull(),
    /** Tasks not yet terminal; the run finishes when it reaches 0. */
    remainingTasks: integer("remaining_tasks").notNull(),
    /** Terminal tasks that did not succeed. */
    unsuccessfulTasks: integer("unsuccessful_tasks").notNull().default(0),
    /** Set by a cancel; the run ends CANCELLED once its stopping tasks have ended. */
    cancelRequested: boolean("cancel_requested").notNull().default(false),
    createdAt: timestamptz("created_at").notNull().defaultNow(),
    finishedAt: timestamptz("finished_at"),
    /** The tenant (a team's namespace, docs/security-auth.md) whose tokens may see and cancel the run. */
    tenant: text("tenant").notNull().default("default"),
  },
  (t) => [
    index("runs_created_at_idx").on(t.createdAt.desc()),
    index("runs_tenant_created_at_idx").on(t.tenant, t.createdAt.desc()),
  ],
);

export const tasks = pgTable(
  "tasks",
  {
    id: uuid("id").primaryKey(),
    runId: uuid("run_id")
      .notNull()
      .references(() => runs.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    state: smallint("state")
      .notNull()
      .references(() => taskStates.id),
    /** Current attempt, 1-based; 0 before the first. */
    attempt: integer("attempt").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull(),
    /** Publications of the current attempt (re-publishing bumps it). */
    dispatch: integer("dispatch").notNull().default(0),
    /** Fencing token of the current lease; results with another epoch are rejected. */
    leaseEpoch: bigint("lease_epoch", { mode: "number" }).notNull().default(0),
    /** Dependencies that have not succeeded yet; the task is ready at 0. */
    pendingDeps: integer("pending_deps").notNull(),
    pool: text("pool").notNull(),
    /** Declared limits (`LimitMemory=`, `LimitCPU=`; 0 when none): what the autoscaler packs hosts by. */
    memoryBytes: bigint("memory_bytes", { mode: "number" }).notNull().default(0),
    cpuMillis: integer("cpu_millis").notNull().default(0),
    /** For handler tasks: the handler (with the pool, the queue lane its work waits in). */
    handler: text("handler"),
    /** The TaskSpec, protobuf-encoded. */
    spec: bytea("spec").notNull(),
    retryAt: timestamptz("retry_at"),
    /** A handler task's result, once it succeeded. */
    output: bytea("output"),
    outputContentType: text("output_content_type"),
    cancelRequested: boolean("cancel_requested").notNull().default(false),
    /** The task that spawned this one at run time; null for the run's own tasks. */
    parentId: uuid("parent_id"),
    /**
     * Spawned children whose subtree has not ended yet. A task that ended
     * with open children has not *settled*: what needs it keeps waiting.
     */
    openChildren: integer("open_children").notNull().default(0),
    /** A spawned descendant ended unsuccessfully: dependents that need this task are skipped. */
    subtreeFailed: boolean("subtree_failed").notNull().default(false),
    host: text("host"),
    exitCode: integer("exit_code"),
    detail: text("detail"),
    createdAt: timestamptz("created_at").notNull().defaultNow(),
    /** Last state change; the reconciler looks for dispatched tasks that have not moved in a while. */
    updatedAt: timestamptz("updated_at").notNull().defaultNow(),
    startedAt: timestamptz("started_at"),
    finishedAt: timestamptz("finished_at"),
  },
  (t) => [
    unique("tasks_run_id_name_key").on(t.runId, t.name),
    index("tasks_name_idx").on(t.name),
    index("tasks_parent_idx").on(t.parentId).where(sql`parent_id is not null`),
    index("tasks_retry_at_idx")
      .on(t.retryAt)
      .where(sql.raw(`state = ${TaskState.RETRYING}`)),
    index("tasks_dispatched_idx")
      .on(t.updatedAt)
      .where(sql.raw(`state in (${TaskState.PENDING}, ${TaskState.RUNNING})`)),
  ],
);

export const taskEdges = pgTable(
  "task_edges",
  {
    runId: uuid("run_id")
      .notNull()
      .references(() => runs.id, { onDelete: "cascade" }),
    parentId: uuid("parent_id").notNull(),
    childId: uuid("child_id").notNull(),
    /**
     * `requires`: the child starts once the parent succeeded, and is skipped if it did not.
     * `after`: ordering only: the child starts once the parent ended, however it ended.
     */
    kind: text("kind", { enum: ["requires", "after"] })
      .notNull()
      .default("requires"),
  },
  (t) => [
    primaryKey({ columns: [t.parentId, t.childId] }),
    index("task_edges_child_idx").on(t.childId),
    index("task_edges_run_idx").on(t.runId),
  ],
);

/** Append-only audit trail: every state change, including rejected (fenced) results. */
export const taskEvents = pgTable(
  "task_events",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    runId: uuid("run_id").notNull(),
    taskId: uuid("task_id").notNull(),
    attempt: integer("attempt").notNull(),
    fromState: smallint("from_state").notNull(),
    toState: smallint("to_state").notNull(),
    at: timestamptz("at").notNull(),
    host: text("host").notNull().default(""),
    leaseEpoch: bigint("lease_epoch", { mode: "number" }).notNull().default(0),
    exitCode: integer("exit_code"),
    detail: text("detail").notNull().default(""),
    /** A result that arrived with a stale lease and was not applied. */
    rejected: boolean("rejected").notNull().default(false),
  },
  (t) => [index("task_events_task_idx").on(t.taskId, t.id)],
);

export const logChunks = pgTable(
  "log_chunks",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    runId: uuid("run_id").notNull(),
    taskId: uuid("task_id").notNull(),
    attempt: integer("attempt").notNull(),
    stream: smallint("stream").notNull(),
    seq: integer("seq").notNull(),
    at: timestamptz("at").notNull(),
    data: bytea("data").notNull(),
    droppedBytes: bigint("dropped_bytes", { mode: "number" }).notNull().default(0),
  },
  (t) => [unique("log_chunks_dedupe_key").on(t.taskId, t.attempt, t.stream, t.seq)],
);

/** Work to publish, written in the same transaction that made the task ready. */
export const outbox = pgTable("outbox", {
  id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
  taskId: uuid("task_id").notNull(),
  pool: text("pool").notNull(),
  /** The WorkItem, protobuf-encoded. */
  payload: bytea("payload").notNull(),
  createdAt: timestamptz("created_at").notNull().defaultNow(),
});

/**
 * Outputs too large for an event message, stored by the sidecar before it
 * reports the attempt's end (a claim check); the recorder moves the one of
 * the attempt that wins the fence into `tasks.output`.
 */
export const taskOutputs = pgTable(
  "task_outputs",
  {
    taskId: uuid("task_id").notNull(),
    attempt: integer("attempt").notNull(),
    leaseEpoch: bigint("lease_epoch", { mode: "number" }).notNull(),
    data: bytea("data").notNull(),
    contentType: text("content_type").notNull().default(""),
    createdAt: timestamptz("created_at").notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.attempt, t.leaseEpoch] })],
);

/**
 * Runs started at the times a trigger says (cron, or a condition evaluated
 * every so often). The hubs share the work: whichever locks a due row first
 * (`for update skip locked`) fires it, and `schedule_fires` holds each slot
 * once, so a slot fires once however many hubs run and whichever of them dies.
 */
export const schedules = pgTable(
  "schedules",
  {
    name: text("name").primaryKey(),
    /** The ScheduleSpec, protobuf-encoded. */
    spec: bytea("spec").notNull(),
    kind: text("kind", { enum: ["cron", "condition"] }).notNull(),
    paused: boolean("paused").notNull().default(false),
    pausedReason: text("paused_reason").notNull().default(""),
    /** The next slot to consider; null once none will come (past the end). */
    nextSlot: timestamptz("next_slot"),
    /** When that slot fires: the slot plus its jitter. */
    nextDueAt: timestamptz("next_due_at"),
    /** The run the last started slot made (for the overlap policy). */
    lastRunId: uuid("last_run_id"),
    /** Slots waiting for the previous run to finish (overlap policy `queue`). */
    queued: integer("queued").notNull().default(0),
    /** Condition schedules: whether the last finished evaluation held (edge triggering). */
    conditionHeld: boolean("condition_held").notNull().default(false),
    createdAt: timestamptz("created_at").notNull().defaultNow(),
    updatedAt: timestamptz("updated_at").notNull().defaultNow(),
    /** The tenant the schedule and the runs it starts belong to. */
    tenant: text("tenant").notNull().default("default"),
  },
  (t) => [index("schedules_next_due_idx").on(t.nextDueAt).where(sql`not paused`)],
);

/** Each slot of a schedule, once: started, skipped, queued or missed. */
export const scheduleFires = pgTable(
  "schedule_fires",
  {
    schedule: text("schedule")
      .notNull()
      .references(() => schedules.name, { onDelete: "cascade" }),
    slot: timestamptz("slot").notNull(),
    firedAt: timestamptz("fired_at").notNull().defaultNow(),
    /** FireOutcome. */
    outcome: smallint("outcome").notNull(),
    /** FireCause. */
    cause: smallint("cause").notNull(),
    runId: uuid("run_id"),
    detail: text("detail").notNull().default(""),
  },
  (t) => [
    primaryKey({ columns: [t.schedule, t.slot] }),
    index("schedule_fires_queued_idx")
      .on(t.schedule, t.slot)
      .where(sql.raw(`run_id is null and outcome = ${FireOutcome.QUEUED}`)),
  ],
);

/** Each evaluation of a condition schedule: a one-task run of the condition check. */
export const conditionEvaluations = pgTable(
  "condition_evaluations",
  {
    schedule: text("schedule")
      .notNull()
      .references(() => schedules.name, { onDelete: "cascade" }),
    slot: timestamptz("slot").notNull(),
    /** EvaluationOutcome. */
    outcome: smallint("outcome").notNull(),
    runId: uuid("run_id").notNull(),
    taskId: uuid("task_id").notNull(),
    host: text("host").notNull().default(""),
    exitCode: integer("exit_code"),
    startedAt: timestamptz("started_at"),
    durationMs: bigint("duration_ms", { mode: "number" }).notNull().default(0),
    detail: text("detail").notNull().default(""),
    fired: boolean("fired").notNull().default(false),
  },
  (t) => [
    primaryKey({ columns: [t.schedule, t.slot] }),
    index("condition_evaluations_pending_idx")
      .on(t.schedule)
      .where(sql.raw(`outcome = ${EvaluationOutcome.PENDING}`)),
  ],
);

/** Sidecar hosts as their heartbeats describe them: one row per host name, rewritten at every beat. */
export const hosts = pgTable("hosts", {
  name: text("name").primaryKey(),
  /** The provider's id when the autoscaler made the host; "" for hosts started by hand. */
  providerHostId: text("provider_host_id").notNull().default(""),
  pools: jsonb("pools").$type<string[]>().notNull(),
  slots: integer("slots").notNull(),
  running: integer("running").notNull(),
  draining: boolean("draining").notNull(),
  stopped: boolean("stopped").notNull(),
  labels: jsonb("labels").$type<Record<string, string>>().notNull(),
  startedAt: timestamptz("started_at").notNull(),
  lastSeenAt: timestamptz("last_seen_at").notNull(),
});

export const PROVISIONED_HOST_STATES = [
  // asked for; the provider has not confirmed it yet (a create is retried with the same token)
  "requested",
  "provisioning",
  // the provider says it runs; its sidecar has not been heard from yet
  "running",
  // its sidecar sends heartbeats
  "registered",
  // asked to drain: no new leases, running tasks finish
  "draining",
  // drained (or never registered, or lost): being deleted at the provider
  "deleting",
  "deleted",
] as const;
export type ProvisionedHostState = (typeof PROVISIONED_HOST_STATES)[number];

/** Hosts the autoscaler asked a provider for, from the request until they are deleted. */
export const provisionedHosts = pgTable(
  "provisioned_hosts",
  {
    /** The idempotency token of the create call. */
    token: uuid("token").primaryKey(),
    pool: text("pool").notNull(),
    provider: text("provider").notNull(),
    /** Null until the provider has answered the create. */
    providerHostId: text("provider_host_id"),
    state: text("state", { enum: PROVISIONED_HOST_STATES }).notNull(),
    createAttempts: integer("create_attempts").notNull().default(0),
    /** A failed create or delete is tried again from then on. */
    retryAt: timestamptz("retry_at"),
    requestedAt: timestamptz("requested_at").notNull().defaultNow(),
    runningAt: timestamptz("running_at"),
    registeredAt: timestamptz("registered_at"),
    drainingAt: timestamptz("draining_at"),
    deletedAt: timestamptz("deleted_at"),
    /** Why it is being deleted, or the last failure. */
    detail: text("detail").notNull().default(""),
  },
  (t) => [index("provisioned_hosts_pool_idx").on(t.pool).where(sql`deleted_at is null`)],
);

/** Every provisioning decision and provider call: the audit trail of `task hosts history`. */
export const hostEvents = pgTable(
  "host_events",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    at: timestamptz("at").notNull().defaultNow(),
    pool: text("pool").notNull(),
    token: uuid("token"),
    providerHostId: text("provider_host_id").notNull().default(""),
    /** scale-up, scale-down, create, create-failed, registered, never-registered, lost, drain, deleted… */
    action: text("action").notNull(),
    detail: text("detail").notNull().default(""),
  },
  (t) => [index("host_events_pool_idx").on(t.pool, t.id)],
);

export const MAPREDUCE_JOB_STATES = ["running", "committing", "committed", "aborting", "aborted"] as const;
export type MapReduceJobState = (typeof MAPREDUCE_JOB_STATES)[number];

/**
 * MapReduce jobs (docs/mapreduce.md): what the hub commits or rolls back. The
 * move out of `running` is the job's one decision, made by a conditional update.
 */
export const mapreduceJobs = pgTable(
  "mapreduce_jobs",
  {
    runId: uuid("run_id")
      .primaryKey()
      .references(() => runs.id, { onDelete: "cascade" }),
    jobId: text("job_id").notNull(),
    state: text("state", { enum: MAPREDUCE_JOB_STATES }).notNull(),
    stagingDir: text("staging_dir").notNull(),
    output: text("output").notNull(),
    /** MapReduceOutputKind. */
    outputKind: smallint("output_kind").notNull(),
    maps: integer("maps").notNull(),
    reducers: integer("reducers").notNull(),
    /** Why it was aborted, or what the commit did. */
    detail: text("detail").notNull().default(""),
    counters: jsonb("counters").$type<Record<string, number>>().notNull().default({}),
    createdAt: timestamptz("created_at").notNull().defaultNow(),
    decidedAt: timestamptz("decided_at"),
    finishedAt: timestamptz("finished_at"),
  },
  (t) => [index("mapreduce_jobs_state_idx").on(t.state, t.finishedAt)],
);

/**
 * Every request the hub's API refused for want of credentials or permission
 * (docs/security-auth.md): who (the principal's name, '' when unknown), what,
 * why and from where. Written by the auth interceptor; never read on a hot path.
 */
export const authDenials = pgTable(
  "auth_denials",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    at: timestamptz("at").notNull().defaultNow(),
    principal: text("principal").notNull().default(""),
    /** `HubService/Method`, or the HTTP path (`/metrics`). */
    rpc: text("rpc").notNull(),
    /** The Connect code's name: unauthenticated, permission_denied, not_found. */
    code: text("code").notNull(),
    reason: text("reason").notNull(),
    peer: text("peer").notNull().default(""),
  },
  (t) => [index("auth_denials_at_idx").on(t.at)],
);
