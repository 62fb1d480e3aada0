import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { sql } from "drizzle-orm";
import type { PoolScaling } from "../../core/autoscale-config.js";
import { errorMessage } from "../../core/errors.js";
import { HostDrainRequestSchema } from "../../core/gen/taskframe/v1/messages_pb.js";
import type { HostChannel } from "../../core/host-channel.js";
import type { Logger } from "../../core/logger.js";
import type { Leadership } from "../leadership.js";
import type { Database } from "../store/database.js";
import {
  type HostRow,
  hostHoursLastDay,
  insertProvisioned,
  listHosts,
  listProvisioned,
  type PoolBacklog,
  type ProvisionedRow,
  poolBacklog,
  recordHostEvent,
  setProvisionedState,
} from "../store/queries/hosts.js";
import { type HostProvider, type ProvidedHost, ProviderUnavailableError } from "./provider.js";

export interface AutoscalerOptions {
  provider: HostProvider;
  pools: Record<string, PoolScaling>;
  intervalMs: number;
  registerDeadlineMs: number;
  heartbeatTimeoutMs: number;
  drainTimeoutMs: number;
}

interface AutoscalerDeps {
  database: Database;
  channel: HostChannel;
  leadership: Leadership;
  logger: Logger;
}

/**
 * Hosts for the pool's backlog: by slots, and, when the pool says how big
 * its hosts are, by the memory and CPU its tasks declare (the sums packed
 * into whole hosts), whichever needs more.
 */
export function hostsNeeded(
  backlog: PoolBacklog,
  tasks: number,
  scaling: PoolScaling,
): { hosts: number; reason: string; warning: string } {
  const slots = scaling["slots-per-host"];
  const memory = scaling["memory-per-host"];
  const cpus = scaling["cpus-per-host"];
  const candidates: [number, string][] = [[Math.ceil(tasks / slots), `${slots} slots per host`]];
  if (memory)
    candidates.push([
      Math.ceil(backlog.memoryBytes / memory),
      `${formatBytes(backlog.memoryBytes)} declared, ${formatBytes(memory)} per host`,
    ]);
  if (cpus)
    candidates.push([
      Math.ceil(backlog.cpuMillis / (cpus * 1000)),
      `${backlog.cpuMillis / 1000} CPUs declared, ${cpus} per host`,
    ]);
  const [hosts, reason] = candidates.reduce((most, candidate) => (candidate[0] > most[0] ? candidate : most));
  const tooBig =
    (memory !== undefined && backlog.largestMemoryBytes > memory) ||
    (cpus !== undefined && backlog.largestCpuMillis > cpus * 1000);
  return {
    hosts,
    reason,
    warning: tooBig ? "; a queued task declares more than one host has: it cannot run in this pool" : "",
  };
}

const formatBytes = (bytes: number) =>
  bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${Math.round(bytes / 2 ** 20)} MiB`;

/** A failed create or delete is tried again after this, doubling up to a minute. */
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 60_000;

/** A spent budget is written to the audit trail at most this often. */
const BUDGET_NOTICE_MS = 60_000;

/** How far the hub's and a host's clocks may disagree when telling a reused host id from the new host. */
const CLOCK_SLACK_MS = 30_000;

const ACTIVE = new Set(["requested", "provisioning", "running", "registered"]);

/**
 * The leading hub's autoscaler. Every interval, for each configured pool:
 * carries on with its hosts' lifecycles (create calls retried with their
 * idempotency token, registration deadlines, lost hosts, drains, deletes),
 * then sizes the pool: enough hosts for the tasks queued and running in it
 * (less what hosts started by hand provide), within min and max, at most
 * one scale-up per up-cooldown and one scale-down per down-cooldown. A host
 * is removed by draining it first and deleting it once its sidecar has
 * stopped. Every decision and provider call is a row of `host_events`.
 */
export class Autoscaler {
  readonly #options: AutoscalerOptions;
  readonly #deps: AutoscalerDeps;
  #timer: NodeJS.Timeout | undefined;
  #pass: Promise<void> | undefined;
  #stopped = false;

  constructor(options: AutoscalerOptions, deps: AutoscalerDeps) {
    this.#options = options;
    this.#deps = deps;
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#pass ??= this.pass().finally(() => {
        this.#pass = undefined;
      });
    }, this.#options.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#pass;
  }

  /** One look at every pool (only on the leading hub). */
  async pass(): Promise<void> {
    if (!this.#deps.leadership.isLeader || this.#stopped) return;
    const heard = new Map<string, HostRow>();
    for (const host of await listHosts(this.#deps.database)) {
      if (host.provider_host_id) heard.set(host.provider_host_id, host);
    }
    for (const [pool, scaling] of Object.entries(this.#options.pools)) {
      try {
        await this.#carryOn(pool, heard);
        await this.#size(pool, scaling, heard);
      } catch (error) {
        this.#deps.logger.warn(
          { err: error, pool },
          `autoscaling pool ${pool} failed: ${errorMessage(error)}`,
        );
      }
    }
  }

  /** Moves each of the pool's hosts along its lifecycle. */
  async #carryOn(pool: string, heard: Map<string, HostRow>): Promise<void> {
    const { provider } = this.#options;
    const rows = await listProvisioned(this.#deps.database, pool);
    const provided = new Map<string, ProvidedHost>();
    if (rows.some((row) => row.provider_host_id))
      for (const host of await provider.list(pool)) provided.set(host.id, host);
    for (const row of rows) {
      if (row.state === "requested") {
        if (row.retry_in_ms === null || row.retry_in_ms <= 0)
          await this.#create(row, this.#options.pools[pool]!);
        continue;
      }
      const id = row.provider_host_id!;
      // a provider may reuse an id (Kubernetes pod names): a sidecar that started before the request is another host
      const requestedAtMs = Date.now() - row.age_ms;
      const heardOf = heard.get(id);
      const sidecar =
        heardOf && heardOf.started_at_ms >= requestedAtMs - CLOCK_SLACK_MS ? heardOf : undefined;
      const fresh = sidecar !== undefined && sidecar.last_seen_ms_ago < this.#options.heartbeatTimeoutMs;
      const atProvider = provided.get(id);
      if (row.state === "deleting") {
        if (row.retry_in_ms === null || row.retry_in_ms <= 0) await this.#delete(row);
      } else if (row.state === "draining") {
        if (sidecar?.stopped || !fresh)
          await this.#toDeleting(
            row,
            "drained",
            sidecar?.stopped ? "its sidecar stopped" : "its sidecar went quiet while draining",
          );
        else if ((row.draining_for_ms ?? 0) > this.#options.drainTimeoutMs)
          await this.#toDeleting(
            row,
            "drain-timeout",
            `still running ${sidecar.running} tasks after the drain timeout`,
          );
        else await this.#askToDrain(row, "scale-down");
      } else if (!atProvider) {
        await this.#toDeleting(row, "lost", "the provider no longer has it");
      } else if (atProvider.state === "failed") {
        await this.#toDeleting(row, "failed", atProvider.detail ?? "the provider says it failed");
      } else if (row.state === "registered") {
        if (!fresh || sidecar?.stopped)
          await this.#toDeleting(
            row,
            "lost",
            sidecar?.stopped
              ? "its sidecar stopped without being asked"
              : `no heartbeat for ${Math.round((sidecar?.last_seen_ms_ago ?? 0) / 1000)} s: its leases expire and its tasks are delivered again`,
          );
      } else if (fresh && !sidecar.stopped) {
        await setProvisionedState(this.#deps.database, row.token, "registered");
        await this.#event(row, "registered", `sidecar ${sidecar.name}, ${sidecar.slots} slots`);
      } else if (atProvider.state === "running" && row.state === "provisioning") {
        await setProvisionedState(this.#deps.database, row.token, "running");
        await this.#event(row, "running", "the provider started it; waiting for its sidecar");
      } else if (row.state === "running" && (row.running_for_ms ?? 0) > this.#options.registerDeadlineMs) {
        await this.#toDeleting(
          row,
          "never-registered",
          `its sidecar was not heard from within ${Math.round(this.#options.registerDeadlineMs / 1000)} s`,
        );
      }
    }
  }

  /** Adds or removes hosts so that the pool has what its backlog needs. */
  async #size(pool: string, scaling: PoolScaling, heard: Map<string, HostRow>): Promise<void> {
    const database = this.#deps.database;
    const rows = await listProvisioned(database, pool);
    const active = rows.filter((row) => ACTIVE.has(row.state));
    const backlog = await poolBacklog(database, pool);
    const { pending, running } = backlog;
    // hosts started by hand carry part of the load
    const [others] = await database.rows<{ slots: number }>(sql`
      select coalesce(sum(slots), 0)::int as slots from hosts
      where provider_host_id = '' and not stopped and pools ? ${pool}
        and last_seen_at > clock_timestamp() - make_interval(secs => ${this.#options.heartbeatTimeoutMs / 1000})`);
    const demand = Math.max(0, pending + running - (others?.slots ?? 0));
    const need = hostsNeeded(backlog, demand, scaling);
    const desired = Math.min(scaling.max, Math.max(scaling.min, need.hosts));
    const since = await this.#sinceLastScaling(pool);
    const why = `${pending} queued and ${running} running tasks, ${need.reason}: ${active.length} → ${desired} hosts${need.warning}`;
    if (desired > active.length && since.upMs >= scaling["scale-up-cooldown"]) {
      const budget = scaling["host-hours-per-day"];
      const spent = budget === undefined ? 0 : await hostHoursLastDay(database, pool);
      if (budget !== undefined && spent >= budget) {
        // said once a minute (or up-cooldown), not at every pass
        if (since.budgetMs >= Math.max(BUDGET_NOTICE_MS, scaling["scale-up-cooldown"]))
          await recordHostEvent(database, {
            pool,
            action: "budget",
            detail: `${spent.toFixed(2)} of ${budget} host-hours spent in the last 24 h: not scaling up (${why})`,
          });
        return;
      }
      await recordHostEvent(database, { pool, action: "scale-up", detail: why });
      for (let i = active.length; i < desired; i++) {
        const token = randomUUID();
        await insertProvisioned(database, { token, pool, provider: this.#options.provider.kind });
        const [row] = (await listProvisioned(database, pool)).filter((r) => r.token === token);
        if (row) await this.#create(row, scaling);
      }
    } else if (
      desired < active.length &&
      since.downMs >= scaling["scale-down-cooldown"] &&
      since.upMs >= scaling["scale-down-cooldown"]
    ) {
      await recordHostEvent(database, { pool, action: "scale-down", detail: why });
      // hosts that carry no work go first: not yet started, then the least busy
      const load = (row: ProvisionedRow) =>
        row.state === "registered" ? 1 + (heard.get(row.provider_host_id ?? "")?.running ?? 0) : 0;
      const victims = [...active].sort((a, b) => load(a) - load(b)).slice(0, active.length - desired);
      for (const row of victims) {
        if (row.state === "registered") {
          await setProvisionedState(database, row.token, "draining");
          await this.#event(
            row,
            "drain",
            "scale-down: no new leases; running tasks finish, then it is deleted",
          );
          await this.#askToDrain(row, "scale-down");
        } else if (row.state === "requested" && !row.provider_host_id) {
          // never created: a create still being retried is given up (its token dies with the row)
          await setProvisionedState(database, row.token, "deleted", { detail: "not needed any more" });
          await this.#event(row, "cancelled", "not needed any more; never created");
        } else await this.#toDeleting(row, "not-needed", "scale-down before its sidecar registered");
      }
    }
  }

  async #create(row: ProvisionedRow, scaling: PoolScaling): Promise<void> {
    const database = this.#deps.database;
    try {
      const host = await this.#options.provider.create({
        pool: row.pool,
        size: scaling.size,
        labels: scaling.labels,
        token: row.token,
      });
      const state = host.state === "running" ? "running" : "provisioning";
      await setProvisionedState(database, row.token, state, {
        providerHostId: host.id,
        createAttempt: true,
        retryInMs: null,
      });
      await this.#event({ ...row, provider_host_id: host.id }, "created", `${host.state} at the provider`);
    } catch (error) {
      const retryable = error instanceof ProviderUnavailableError;
      const attempts = row.create_attempts + 1;
      const retryInMs = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (attempts - 1));
      await setProvisionedState(database, row.token, retryable ? "requested" : "deleted", {
        createAttempt: true,
        retryInMs: retryable ? retryInMs : null,
        detail: errorMessage(error),
      });
      await this.#event(
        row,
        "create-failed",
        `${errorMessage(error)}${retryable ? `; again in ${retryInMs / 1000} s with the same token` : "; given up"}`,
      );
    }
  }

  async #delete(row: ProvisionedRow): Promise<void> {
    try {
      await this.#options.provider.delete(row.provider_host_id!);
      await setProvisionedState(this.#deps.database, row.token, "deleted", { retryInMs: null });
      await this.#event(row, "deleted", row.detail);
    } catch (error) {
      const retryable = error instanceof ProviderUnavailableError;
      await setProvisionedState(this.#deps.database, row.token, "deleting", {
        retryInMs: retryable ? RETRY_BASE_MS * 5 : RETRY_MAX_MS,
      });
      await this.#event(row, "delete-failed", errorMessage(error));
    }
  }

  async #toDeleting(row: ProvisionedRow, action: string, detail: string): Promise<void> {
    await setProvisionedState(this.#deps.database, row.token, "deleting", { detail, retryInMs: null });
    await this.#event(row, action, detail);
    await this.#delete({ ...row, detail });
  }

  async #askToDrain(row: ProvisionedRow, reason: string): Promise<void> {
    await this.#deps.channel
      .publishDrain(create(HostDrainRequestSchema, { providerHostId: row.provider_host_id ?? "", reason }))
      .catch((error: unknown) => this.#deps.logger.warn({ err: error }, "could not ask a host to drain"));
  }

  #event(row: Pick<ProvisionedRow, "pool" | "token" | "provider_host_id">, action: string, detail: string) {
    return recordHostEvent(this.#deps.database, {
      pool: row.pool,
      action,
      token: row.token,
      providerHostId: row.provider_host_id ?? "",
      detail,
    });
  }

  /** Time since the pool last scaled up and down (from the audit trail, so a new leader keeps the cooldowns). */
  async #sinceLastScaling(pool: string): Promise<{ upMs: number; downMs: number; budgetMs: number }> {
    const [row] = await this.#deps.database.rows<
      Record<"up_ms" | "down_ms" | "budget_ms", number | null>
    >(sql`
      select (extract(epoch from clock_timestamp() - max(at) filter (where action = 'scale-up')) * 1000)::float8 as up_ms,
        (extract(epoch from clock_timestamp() - max(at) filter (where action = 'scale-down')) * 1000)::float8 as down_ms,
        (extract(epoch from clock_timestamp() - max(at) filter (where action = 'budget')) * 1000)::float8 as budget_ms
      from host_events where pool = ${pool} and action in ('scale-up', 'scale-down', 'budget')`);
    const never = Number.POSITIVE_INFINITY;
    return { upMs: row?.up_ms ?? never, downMs: row?.down_ms ?? never, budgetMs: row?.budget_ms ?? never };
  }
}
