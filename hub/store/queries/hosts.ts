import { sql } from "drizzle-orm";
import type { HostHeartbeat } from "../../../core/gen/taskframe/v1/messages_pb.js";
import { TaskState } from "../../../core/states.js";
import type { Database } from "../database.js";
import { hostEvents, hosts, type ProvisionedHostState, provisionedHosts } from "../schema.js";

/** The newest heartbeat of each host, written in one statement. */
export async function recordHeartbeats(database: Database, beats: readonly HostHeartbeat[]): Promise<void> {
  const newest = new Map<string, HostHeartbeat>();
  for (const beat of beats) {
    const seen = newest.get(beat.host);
    if (!seen || seen.sentAtUnixMs <= beat.sentAtUnixMs) newest.set(beat.host, beat);
  }
  if (newest.size === 0) return;
  await database.db
    .insert(hosts)
    .values(
      [...newest.values()].map((beat) => ({
        name: beat.host,
        providerHostId: beat.providerHostId,
        pools: beat.pools,
        slots: beat.slots,
        running: beat.running,
        draining: beat.draining,
        stopped: beat.stopped,
        labels: beat.labels,
        startedAt: new Date(Number(beat.startedAtUnixMs)),
        lastSeenAt: new Date(),
      })),
    )
    .onConflictDoUpdate({
      target: hosts.name,
      set: {
        providerHostId: sql`excluded.provider_host_id`,
        pools: sql`excluded.pools`,
        slots: sql`excluded.slots`,
        running: sql`excluded.running`,
        draining: sql`excluded.draining`,
        stopped: sql`excluded.stopped`,
        labels: sql`excluded.labels`,
        startedAt: sql`excluded.started_at`,
        lastSeenAt: sql`excluded.last_seen_at`,
      },
    });
}

/** Forgets hosts that stopped (or went quiet) longer ago than `olderThanMs`; returns how many. */
export async function pruneGoneHosts(database: Database, olderThanMs: number): Promise<number> {
  const gone = await database.rows<{ name: string }>(sql`
    delete from hosts where last_seen_at < clock_timestamp() - make_interval(secs => ${olderThanMs / 1000})
    returning name`);
  return gone.length;
}

export interface HostRow {
  name: string;
  provider_host_id: string;
  pools: string[];
  slots: number;
  running: number;
  draining: boolean;
  stopped: boolean;
  labels: Record<string, string>;
  started_at_ms: number;
  last_seen_ms_ago: number;
}

/** Every host heard from, with how long ago. */
export function listHosts(database: Database): Promise<HostRow[]> {
  return database.rows<HostRow>(sql`
    select name, provider_host_id, pools, slots, running, draining, stopped, labels,
      (extract(epoch from started_at) * 1000)::float8 as started_at_ms,
      (extract(epoch from clock_timestamp() - last_seen_at) * 1000)::float8 as last_seen_ms_ago
    from hosts order by name`);
}

export interface ProvisionedRow {
  token: string;
  pool: string;
  provider: string;
  provider_host_id: string | null;
  state: ProvisionedHostState;
  create_attempts: number;
  retry_in_ms: number | null;
  age_ms: number;
  /** Since the provider said it runs (null before). */
  running_for_ms: number | null;
  draining_for_ms: number | null;
  detail: string;
}

/** The pool's hosts that are not deleted yet. */
export function listProvisioned(database: Database, pool?: string): Promise<ProvisionedRow[]> {
  return database.rows<ProvisionedRow>(sql`
    select token, pool, provider, provider_host_id, state, create_attempts, detail,
      (extract(epoch from retry_at - clock_timestamp()) * 1000)::float8 as retry_in_ms,
      (extract(epoch from clock_timestamp() - requested_at) * 1000)::float8 as age_ms,
      (extract(epoch from clock_timestamp() - running_at) * 1000)::float8 as running_for_ms,
      (extract(epoch from clock_timestamp() - draining_at) * 1000)::float8 as draining_for_ms
    from provisioned_hosts
    where deleted_at is null ${pool === undefined ? sql`` : sql`and pool = ${pool}`}
    order by requested_at, token`);
}

export async function insertProvisioned(
  database: Database,
  row: { token: string; pool: string; provider: string },
): Promise<void> {
  await database.db.insert(provisionedHosts).values({ ...row, state: "requested" });
}

/** Moves a host to `state`, stamping the time that state began. */
export async function setProvisionedState(
  database: Database,
  token: string,
  state: ProvisionedHostState,
  changes: {
    providerHostId?: string;
    detail?: string;
    retryInMs?: number | null;
    createAttempt?: boolean;
  } = {},
): Promise<void> {
  const stamp = {
    requested: sql``,
    provisioning: sql``,
    running: sql`, running_at = coalesce(running_at, clock_timestamp())`,
    registered: sql`, registered_at = coalesce(registered_at, clock_timestamp())`,
    draining: sql`, draining_at = coalesce(draining_at, clock_timestamp())`,
    deleting: sql``,
    deleted: sql`, deleted_at = clock_timestamp()`,
  }[state];
  await database.rows(sql`
    update provisioned_hosts set state = ${state} ${stamp}
      ${changes.providerHostId === undefined ? sql`` : sql`, provider_host_id = ${changes.providerHostId}`}
      ${changes.detail === undefined ? sql`` : sql`, detail = ${changes.detail}`}
      ${changes.createAttempt ? sql`, create_attempts = create_attempts + 1` : sql``}
      ${
        changes.retryInMs === undefined
          ? sql``
          : changes.retryInMs === null
            ? sql`, retry_at = null`
            : sql`, retry_at = clock_timestamp() + make_interval(secs => ${changes.retryInMs / 1000})`
      }
    where token = ${token}`);
}

export async function recordHostEvent(
  database: Database,
  event: { pool: string; action: string; token?: string; providerHostId?: string; detail?: string },
): Promise<void> {
  await database.db.insert(hostEvents).values({
    pool: event.pool,
    action: event.action,
    token: event.token ?? null,
    providerHostId: event.providerHostId ?? "",
    detail: event.detail ?? "",
  });
}

export interface HostEventRow {
  at_ms: number;
  pool: string;
  token: string | null;
  provider_host_id: string;
  action: string;
  detail: string;
}

export function listHostEvents(
  database: Database,
  options: { pool?: string; limit: number },
): Promise<HostEventRow[]> {
  return database.rows<HostEventRow>(sql`
    select * from (
      select id, (extract(epoch from at) * 1000)::float8 as at_ms, pool, token, provider_host_id, action, detail
      from host_events
      ${options.pool === undefined ? sql`` : sql`where pool = ${options.pool}`}
      order by id desc limit ${options.limit}
    ) newest order by id`);
}

/** Host-hours the pool's provisioned hosts have lived in the last 24 hours (from request to deletion). */
export async function hostHoursLastDay(database: Database, pool: string): Promise<number> {
  const [row] = await database.rows<{ hours: number }>(sql`
    select coalesce(sum(extract(epoch from coalesce(deleted_at, clock_timestamp())
        - greatest(requested_at, clock_timestamp() - interval '1 day'))), 0)::float8 / 3600 as hours
    from provisioned_hosts
    where pool = ${pool} and coalesce(deleted_at, clock_timestamp()) > clock_timestamp() - interval '1 day'`);
  return row?.hours ?? 0;
}

export interface PoolBacklog {
  pending: number;
  running: number;
  /** What those tasks declare (`LimitMemory=`, `LimitCPU=` in thousandths of a CPU). */
  memoryBytes: number;
  cpuMillis: number;
  /** The most one queued task declares: a task bigger than a host can never be placed. */
  largestMemoryBytes: number;
  largestCpuMillis: number;
}

/** Tasks of a pool waiting in the queue and running now: what the pool's hosts must carry. */
export async function poolBacklog(database: Database, pool: string): Promise<PoolBacklog> {
  const [row] = await database.rows<PoolBacklog>(sql`
    select count(*) filter (where state = ${TaskState.PENDING})::int as "pending",
      count(*) filter (where state = ${TaskState.RUNNING})::int as "running",
      coalesce(sum(memory_bytes), 0)::float8 as "memoryBytes", coalesce(sum(cpu_millis), 0)::float8 as "cpuMillis",
      coalesce(max(memory_bytes) filter (where state = ${TaskState.PENDING}), 0)::float8 as "largestMemoryBytes",
      coalesce(max(cpu_millis) filter (where state = ${TaskState.PENDING}), 0)::float8 as "largestCpuMillis"
    from tasks where pool = ${pool} and state in (${TaskState.PENDING}, ${TaskState.RUNNING})`);
  return (
    row ?? {
      pending: 0,
      running: 0,
      memoryBytes: 0,
      cpuMillis: 0,
      largestMemoryBytes: 0,
      largestCpuMillis: 0,
    }
  );
}
