import { create } from "@bufbuild/protobuf";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { autoscaleConfigSchema } from "../../core/autoscale-config.js";
import { HostHeartbeatSchema } from "../../core/gen/taskframe/v1/messages_pb.js";
import { ResourceLimitsSchema } from "../../core/gen/taskframe/v1/spec_pb.js";
import { MemoryHostChannel } from "../../core/host-channel.js";
import { silentLogger } from "../../core/logger.js";
import { runSpec, shellTask, startEngine, type TestEngine } from "../../test/helpers/engine.js";
import { SoleLeader } from "../leadership.js";
import {
  listHostEvents,
  listHosts,
  listProvisioned,
  pruneGoneHosts,
  recordHeartbeats,
} from "../store/queries/hosts.js";
import { Autoscaler } from "./autoscaler.js";
import {
  type CreateHostRequest,
  type HostProvider,
  type ProvidedHost,
  ProviderUnavailableError,
} from "./provider.js";

/** A provider in memory that records every call and fails creates on demand. */
class RecordingProvider implements HostProvider {
  readonly kind = "recording";
  readonly creates: CreateHostRequest[] = [];
  readonly deletes: string[] = [];
  readonly hosts = new Map<string, ProvidedHost>();
  failCreates = 0;
  made = 0;

  async create(request: CreateHostRequest): Promise<ProvidedHost> {
    this.creates.push(request);
    if (this.failCreates > 0) {
      this.failCreates -= 1;
      throw new ProviderUnavailableError("503 from the datacenter");
    }
    const existing = [...this.hosts.values()].find((h) => h.token === request.token);
    if (existing) return existing;
    this.made += 1;
    const host: ProvidedHost = {
      id: `host-${this.made}`,
      pool: request.pool,
      state: "running",
      labels: request.labels,
      token: request.token,
      createdAtMs: Date.now(),
    };
    this.hosts.set(host.id, host);
    return host;
  }
  async get(id: string) {
    return this.hosts.get(id);
  }
  async list(pool: string) {
    return [...this.hosts.values()].filter((h) => h.pool === pool);
  }
  async delete(id: string) {
    this.deletes.push(id);
    this.hosts.delete(id);
  }
  async close() {}
}

const GiB = 2 ** 30;

describe("the autoscaler's decisions", () => {
  let engine: TestEngine;
  beforeAll(async () => {
    // one slot, taken by the first long task: the rest stay queued (the embedded sidecar leases every pool)
    engine = await startEngine("postgres", { slots: 1 });
  });
  afterAll(async () => {
    await engine?.[Symbol.asyncDispose]();
  });

  const scaler = (provider: HostProvider, pools: Record<string, unknown>, registerDeadline = "1m") =>
    new Autoscaler(
      {
        provider,
        pools: autoscaleConfigSchema.parse({ provider: { kind: "local" }, pools }).pools,
        intervalMs: 60_000,
        registerDeadlineMs: autoscaleConfigSchema.shape["register-deadline"].parse(registerDeadline),
        heartbeatTimeoutMs: 10_000,
        drainTimeoutMs: 60_000,
      },
      {
        database: engine.engine.store.database,
        channel: new MemoryHostChannel(),
        leadership: new SoleLeader(),
        logger: silentLogger,
      },
    );

  it("packs hosts by the memory and CPU queued tasks declare, retries a failed create with its token, and deletes hosts that never register", async () => {
    // 10 tasks of 3 GiB and 2 CPUs: 1 host by slots, 4 by memory (8 GiB hosts), 5 by CPU (4-CPU hosts)
    const tasks = Array.from({ length: 10 }, (_, i) =>
      Object.assign(shellTask(`heavy-${i}`, "sleep 30"), {
        pool: "big",
        limits: create(ResourceLimitsSchema, { memoryBytes: BigInt(3 * GiB), cpuMillis: 2_000 }),
      }),
    );
    await engine.client.submitRun({ run: runSpec("heavy", tasks) });
    const provider = new RecordingProvider();
    provider.failCreates = 1;
    const autoscaler = scaler(
      provider,
      {
        big: {
          max: 8,
          "slots-per-host": 32,
          "memory-per-host": "8G",
          "cpus-per-host": 4,
          "scale-up-cooldown": "1h",
        },
      },
      "0s",
    );
    await autoscaler.pass();
    const database = engine.engine.store.database;
    let rows = await listProvisioned(database, "big");
    expect(rows).toHaveLength(5);
    const events = await listHostEvents(database, { pool: "big", limit: 100 });
    expect(events[0]).toMatchObject({ action: "scale-up" });
    expect(events[0]!.detail).toContain("20 CPUs declared, 4 per host: 0 → 5 hosts");
    // the first create failed (503): that host waits for its retry, with the same token
    expect(rows.filter((r) => r.state === "requested")).toHaveLength(1);
    expect(events.filter((e) => e.action === "create-failed")).toHaveLength(1);
    const retried = rows.find((r) => r.state === "requested")!.token;
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await autoscaler.pass();
    expect(provider.creates.filter((c) => c.token === retried)).toHaveLength(2);
    // five hosts made in all, one per token
    expect(new Set(provider.creates.map((c) => c.token)).size).toBe(5);
    expect(provider.made).toBe(5);
    // the up-cooldown holds: no second scale-up; and with a 0 s deadline the silent hosts are deleted
    rows = await listProvisioned(database, "big");
    const after = await listHostEvents(database, { pool: "big", limit: 100 });
    expect(after.filter((e) => e.action === "scale-up")).toHaveLength(1);
    expect(after.filter((e) => e.action === "never-registered").length).toBeGreaterThan(0);
    expect(provider.deletes.length).toBeGreaterThan(0);
    await autoscaler.stop();
  });

  it("says when a queued task declares more than one host has", async () => {
    const giant = Object.assign(shellTask("giant", "sleep 30"), {
      pool: "huge",
      limits: create(ResourceLimitsSchema, { memoryBytes: BigInt(64 * GiB) }),
    });
    await engine.client.submitRun({ run: runSpec("giant", [giant]) });
    const provider = new RecordingProvider();
    const autoscaler = scaler(provider, { huge: { max: 2, "memory-per-host": "16G" } });
    await autoscaler.pass();
    const [scaleUp] = await listHostEvents(engine.engine.store.database, { pool: "huge", limit: 10 });
    expect(scaleUp!.detail).toContain("a queued task declares more than one host has");
    await autoscaler.stop();
  });

  const queue = async (pool: string, count: number) => {
    const tasks = Array.from({ length: count }, (_, i) =>
      Object.assign(shellTask(`${pool}-${i}-${Date.now()}`, "sleep 30"), { pool }),
    );
    await engine.client.submitRun({ run: runSpec(pool, tasks) });
  };
  const actionsOf = async (pool: string) =>
    (await listHostEvents(engine.engine.store.database, { pool, limit: 100 })).map((e) => e.action);

  it("holds still under a steady load: one scale-up, then nothing, pass after pass", async () => {
    await queue("steady", 20);
    const provider = new RecordingProvider();
    const autoscaler = scaler(provider, {
      steady: { max: 10, "slots-per-host": 8, "scale-up-cooldown": "0s", "scale-down-cooldown": "0s" },
    });
    for (let pass = 0; pass < 6; pass++) await autoscaler.pass();
    expect(provider.made).toBe(3);
    expect((await actionsOf("steady")).filter((a) => a.startsWith("scale-"))).toEqual(["scale-up"]);
    await autoscaler.stop();
  });

  it("stops scaling up once the pool's host-hours budget for the day is spent", async () => {
    await queue("thrifty", 8);
    const provider = new RecordingProvider();
    // 0.0001 host-hours is 0.36 s of one host
    const autoscaler = scaler(provider, {
      thrifty: { max: 10, "slots-per-host": 8, "scale-up-cooldown": "0s", "host-hours-per-day": 0.0001 },
    });
    await autoscaler.pass();
    expect(provider.made).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await queue("thrifty", 16);
    await autoscaler.pass();
    await autoscaler.pass();
    expect(provider.made).toBe(1);
    const actions = await actionsOf("thrifty");
    expect(actions.filter((a) => a === "budget")).toHaveLength(1);
    const [budget] = await listHostEvents(engine.engine.store.database, { pool: "thrifty", limit: 1 });
    expect(budget!.detail).toMatch(/host-hours spent in the last 24 h: not scaling up/);
    await autoscaler.stop();
  });

  it("records heartbeats (the newest per host) and forgets hosts gone for long", async () => {
    const database = engine.engine.store.database;
    const beat = (host: string, running: number, sentAtUnixMs: bigint) =>
      create(HostHeartbeatSchema, {
        host,
        pools: ["default"],
        slots: 4,
        running,
        sentAtUnixMs,
        startedAtUnixMs: 1n,
      });
    await recordHeartbeats(database, [beat("h-1", 3, 2n), beat("h-1", 1, 1n), beat("h-2", 0, 1n)]);
    const heard = await listHosts(database);
    expect(heard.filter((h) => h.name.startsWith("h-")).map((h) => [h.name, h.running])).toEqual([
      ["h-1", 3],
      ["h-2", 0],
    ]);
    await database.rows(sql`update hosts set last_seen_at = now() - interval '2 days' where name = 'h-2'`);
    expect(await pruneGoneHosts(database, 24 * 3_600_000)).toBe(1);
    expect((await listHosts(database)).map((h) => h.name)).toContain("h-1");
    expect((await listHosts(database)).map((h) => h.name)).not.toContain("h-2");
  });
});
