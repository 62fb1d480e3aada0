import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import parseDuration from "parse-duration";
import postgres from "postgres";
import { HubService } from "../../../core/gen/taskframe/v1/hub_pb.js";
import {
  type RunSpec,
  RunSpecSchema,
  type TaskSpec,
  TaskSpecSchema,
} from "../../../core/gen/taskframe/v1/spec_pb.js";
import { taskStateName } from "../../../core/states.js";
import { type LocalCluster, type LocalProcess, startLocalCluster } from "../../../embedded/local-cluster.js";
import type { HubClient } from "../../helpers/engine.js";
import { until } from "../../helpers/until.js";
import { checkInvariants, type InvariantReport, recorderBacklog } from "./invariants.js";
import { type Execution, LEDGER_TASK, ledgerTaskArgs, readLedger } from "./ledger.js";
import type { NetnsHost } from "./netns-host.js";
import type { OwnNats, OwnPostgres } from "./own-services.js";
import { recordScenario } from "./reports.js";

/** How a hub words its refusal of new runs while the work queue stores nothing (hub/queue-backpressure.ts). */
export const QUEUE_REFUSAL = /the work queue has not stored work since/;
const RECONCILE_EVERY = "2s";
const RECONCILE_AFTER = "10s";

export interface ChaosClusterOptions {
  hubs?: number;
  sidecars?: number;
  slots?: number;
  ackWait?: string;
  reconcileEvery?: string;
  reconcileAfter?: string;
  sidecarFlags?: string[];
  hubFlags?: string[];
  /** For every hub this cluster starts (not for restarts): e.g. TASKFRAME_FAILPOINTS. */
  hubEnv?: Record<string, string>;
  /** For every sidecar this cluster starts. */
  sidecarEnv?: Record<string, string>;
  /** Unjailed unless asked: the ledger's pids and files are the host's then. */
  jail?: "none" | "standard";
}

export interface LedgerTaskInit {
  seconds?: number;
  exitCode?: number;
  logLines?: number;
  /** `call`: GET `url` and exit 0 on 200, 1 otherwise (a task depending on a service). */
  mode?: "stop-self" | "segv" | "orphan" | "call";
  url?: string;
  retries?: number;
  intervalMs?: number;
  jitter?: number;
  timeoutMs?: number;
  needs?: string[];
  nonRetryableExitCodes?: number[];
}

/**
 * One scenario's system under test: 2 hubs and 3 sidecars by default, as
 * separate processes, on a fresh database of the suite's own Postgres and a
 * NATS namespace of its own on the suite's own nats-server. Every fault the
 * scenario injects goes through here, so that the report lists them.
 */
export class ChaosCluster implements AsyncDisposable {
  readonly faults: string[] = [];
  /** Submissions a hub refused because the work queue stored nothing (backpressure), each retried. */
  refusedSubmissions = 0;
  readonly #started = Date.now();
  readonly #sidecars = new Map<string, LocalProcess>();
  /** How long the reconciler may take to republish (and clear) an outbox row: after + every + slack. */
  #reconcilePeriodMs = 0;

  private constructor(
    readonly scenario: string,
    readonly local: LocalCluster,
    readonly dbUrl: string,
    readonly nats: OwnNats,
    readonly postgres: OwnPostgres,
    readonly namespace: string,
    readonly dir: string,
    readonly ledgerDir: string,
  ) {
    for (const sidecar of local.sidecars) this.#sidecars.set(sidecar.name, sidecar);
  }

  static async start(
    scenario: string,
    services: { nats: OwnNats; postgres: OwnPostgres },
    options: ChaosClusterOptions = {},
  ): Promise<ChaosCluster> {
    const namespace = `c${randomBytes(5).toString("hex")}`;
    // a jailed task's /tmp is its own: a jailed scenario's files live where the jail lets them through
    const dir = await mkdtemp(join(options.jail === "standard" ? "/var/tmp" : tmpdir(), "taskframe-chaos-"));
    // the sidecars' own state (sockets, process ledgers) is hidden from jailed tasks: it lives apart;
    // a jailed task may write only under its working directory, so the ledger is there
    const workDir = join(dir, "work");
    const ledgerDir = join(workDir, "task-ledger");
    await mkdir(join(dir, "cluster"));
    await mkdir(ledgerDir, { recursive: true });
    if (options.jail === "standard") {
      // jailed tasks run as an unprivileged user: they must reach their directory and append to the ledger
      await chmod(dir, 0o755);
      await chmod(workDir, 0o1777);
      await chmod(ledgerDir, 0o1777);
    }
    const dbUrl = await services.postgres.createDatabase(`chaos_${namespace}`);
    const local = await startLocalCluster({
      dbUrl,
      natsUrl: services.nats.url,
      namespace,
      dir: join(dir, "cluster"),
      hubs: options.hubs ?? 2,
      sidecars: options.sidecars ?? 3,
      slots: options.slots ?? 8,
      ackWait: options.ackWait ?? "4s",
      killGrace: "500ms",
      logMaxBytes: 2 ** 20,
      reconcileEvery: options.reconcileEvery ?? RECONCILE_EVERY,
      reconcileAfter: options.reconcileAfter ?? RECONCILE_AFTER,
      jail: options.jail ?? "none",
      ...(options.sidecarFlags ? { sidecarFlags: options.sidecarFlags } : {}),
      ...(options.hubFlags ? { hubFlags: options.hubFlags } : {}),
      ...(options.hubEnv ? { hubEnv: options.hubEnv } : {}),
      ...(options.sidecarEnv ? { sidecarEnv: options.sidecarEnv } : {}),
    });
    const cluster = new ChaosCluster(
      scenario,
      local,
      dbUrl,
      services.nats,
      services.postgres,
      namespace,
      dir,
      ledgerDir,
    );
    cluster.#reconcilePeriodMs =
      (parseDuration(options.reconcileAfter ?? RECONCILE_AFTER) ?? 0) +
      (parseDuration(options.reconcileEvery ?? RECONCILE_EVERY) ?? 0) +
      5_000;
    return cluster;
  }

  /** A client of the first hub process still alive. */
  client(): HubClient {
    const index = Math.max(
      0,
      this.local.hubs.findIndex((h) => h.child.exitCode === null && h.child.signalCode === null),
    );
    return createClient(
      HubService,
      createConnectTransport({ baseUrl: this.local.hubUrls[index]!, httpVersion: "1.1" }),
    );
  }

  ledgerTask(name: string, init: LedgerTaskInit = {}): TaskSpec {
    return create(TaskSpecSchema, {
      name,
      target: {
        case: "exec",
        value: {
          command: LEDGER_TASK,
          args: ledgerTaskArgs(this.ledgerDir, init),
          cwd: join(this.dir, "work"),
        },
      },
      needs: init.needs ?? [],
      ...(init.timeoutMs ? { timeoutMs: BigInt(init.timeoutMs) } : {}),
      retry: {
        retries: init.retries ?? 0,
        intervalMs: BigInt(init.intervalMs ?? 0),
        jitter: init.jitter ?? 0,
        nonRetryableExitCodes: init.nonRetryableExitCodes ?? [],
      },
    });
  }

  /** Submits, retrying while hubs or Postgres are down or a hub pushes back (the request is idempotent by key). */
  async submit(name: string, tasks: TaskSpec[]): Promise<string> {
    const run: RunSpec = create(RunSpecSchema, { name, tasks });
    const idempotencyKey = `${this.namespace}:${name}`;
    const deadline = Date.now() + 120_000;
    for (;;) {
      try {
        const response = await this.client().submitRun({ run, idempotencyKey });
        return response.run!.id;
      } catch (error) {
        if (
          error instanceof ConnectError &&
          error.code === Code.Unavailable &&
          QUEUE_REFUSAL.test(error.message)
        )
          this.refusedSubmissions++;
        if (Date.now() > deadline) throw error;
        await sleep(500);
      }
    }
  }

  /** What each live hub's `/readyz` says is wrong (empty when every hub is ready). */
  async unreadiness(): Promise<string[]> {
    const answers = await Promise.all(
      this.local.hubs.map(async (hub, i) => {
        if (hub.child.exitCode !== null || hub.child.signalCode !== null) return "";
        const response = await fetch(`${this.local.hubUrls[i]}/readyz`).catch((e: Error) => e);
        if (response instanceof Error) return `hub-${i}: ${response.message}`;
        return response.ok ? "" : `hub-${i}: ${(await response.text()).trim()}`;
      }),
    );
    return answers.filter((a) => a !== "");
  }

  /** `count` independent ledger tasks, submitted as runs of 100 (`NAME-0`, `NAME-1`, ...). */
  async submitMany(name: string, count: number, init: LedgerTaskInit = {}): Promise<void> {
    for (let r = 0; r * 100 < count; r++) {
      const size = Math.min(100, count - r * 100);
      await this.submit(
        `${name}-${r}`,
        Array.from({ length: size }, (_, i) => this.ledgerTask(`t${i}`, init)),
      );
    }
  }

  /** Waits (at most `timeoutMs`) until the executions in the ledger satisfy `done`. */
  async untilLedger(done: (executions: Execution[]) => boolean, timeoutMs = 60_000): Promise<void> {
    await until(
      async () => done(await readLedger(this.ledgerDir)),
      (ok) => ok,
      timeoutMs,
    );
  }

  /** Runs `query` on the scenario's database, on a connection of its own. */
  async query<T>(query: (sql: postgres.Sql) => Promise<T>): Promise<T> {
    const sql = postgres(this.dbUrl, { max: 1, onnotice: () => {} });
    try {
      return await query(sql);
    } finally {
      await sql.end();
    }
  }

  /**
   * Waits until every run has finished (reading Postgres directly: no hub
   * needed), then until the outbox is empty or the reconciler has had a
   * full period to empty it; the checker reports whatever is left.
   */
  async quiesce(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const sql = postgres(this.dbUrl, { max: 1, onnotice: () => {}, connect_timeout: 2 });
    const count = async (query: Promise<{ n: number }[]>) => (await query.catch(() => [{ n: -1 }]))[0]?.n;
    try {
      while ((await count(sql`select count(*)::int as n from runs where finished_at is null`)) !== 0) {
        if (Date.now() > deadline) {
          const states = await sql<{ state: number; n: number }[]>`
            select state, count(*)::int as n from tasks group by state`.catch(() => []);
          const outbox = await count(sql`select count(*)::int as n from outbox`);
          const counts = states.map((s) => `${taskStateName(s.state)} ${s.n}`).join(", ");
          throw new Error(
            `${this.scenario}: runs still open after ${timeoutMs} ms (tasks: ${counts}; outbox: ${outbox})`,
          );
        }
        await sleep(500);
      }
      // a run ends with its last transition; a batch of its logs may still be on its way to Postgres
      while ((await recorderBacklog(this.nats.url, this.namespace).catch(() => -1)) !== 0) {
        if (Date.now() > deadline)
          throw new Error(`${this.scenario}: events still unrecorded after ${timeoutMs} ms`);
        await sleep(500);
      }
      const outboxDeadline = Date.now() + this.#reconcilePeriodMs;
      while ((await count(sql`select count(*)::int as n from outbox`)) !== 0 && Date.now() < outboxDeadline)
        await sleep(500);
    } finally {
      await sql.end();
    }
    // the last acks travel after the final state is recorded
    await sleep(1_500);
  }

  /** Elapsed seconds since the cluster started, for the fault log. */
  get t(): string {
    return `${((Date.now() - this.#started) / 1000).toFixed(1)} s`;
  }

  sidecar(index: number): LocalProcess {
    const name = `sidecar-${index}`;
    const sidecar = this.#sidecars.get(name);
    if (!sidecar) throw new Error(`no ${name}`);
    return sidecar;
  }

  async signalSidecar(index: number, signal: NodeJS.Signals): Promise<void> {
    const sidecar = this.sidecar(index);
    this.faults.push(`${signal} sidecar-${index} at ${this.t}`);
    sidecar.child.kill(signal);
    if (signal === "SIGKILL") await sidecar.exited;
  }

  async restartSidecar(index: number): Promise<void> {
    const name = `sidecar-${index}`;
    this.#sidecars.set(name, await this.local.startSidecar(name));
  }

  /** Starts sidecar `index` on a network-namespace host of its own (it reaches NATS over the host's veth). */
  async startSidecarOn(host: NetnsHost, index: number): Promise<void> {
    const name = `sidecar-${index}`;
    const natsUrl = `nats://${host.hostSideIp}:${this.nats.port}`;
    this.#sidecars.set(name, await this.local.startSidecar(name, { wrap: host.wrap, natsUrl }));
  }

  /**
   * Starts another hub on a network-namespace host of its own (it reaches
   * NATS and Postgres over the host's veth); returns its index. Nobody calls
   * its API: hub 0 serves the harness and the sidecars.
   */
  async startHubOn(host: NetnsHost): Promise<number> {
    const db = new URL(this.dbUrl);
    db.hostname = host.hostSideIp;
    await this.local.startHub({
      wrap: host.wrap,
      listen: "0.0.0.0:0",
      dbUrl: db.toString(),
      natsUrl: `nats://${host.hostSideIp}:${this.nats.port}`,
    });
    return this.local.hubs.length - 1;
  }

  async partition(host: NetnsHost, what: string): Promise<void> {
    this.faults.push(`partition ${what} at ${this.t}`);
    await host.partition();
  }

  async heal(host: NetnsHost, what: string): Promise<void> {
    this.faults.push(`heal ${what} at ${this.t}`);
    await host.heal();
  }

  async killHub(index: number): Promise<void> {
    const hub = this.local.hubs[index]!;
    this.faults.push(`SIGKILL hub-${index} at ${this.t}`);
    hub.child.kill("SIGKILL");
    await hub.exited;
  }

  /** Starts hub `index` again at its old address (sidecars and clients keep their URL), without the cluster's hubEnv. */
  async restartHub(index: number): Promise<void> {
    const listen = new URL(this.local.hubUrls[index]!).host;
    const hub = await this.local.startHub({ listen, env: {} });
    // startHub appended it: move it back into its slot
    this.local.hubs.pop();
    this.local.hubUrls.pop();
    this.local.hubs[index] = hub;
  }

  /** Checks I1-I7, records the scenario's report for the suite's summary and returns it. */
  /** Checks I1–I7 and records the scenario's report, with `extra` measures; `prunedBefore`: see checkInvariants. */
  async check(
    extra: Record<string, number | string> = {},
    options: { prunedBefore?: number } = {},
  ): Promise<InvariantReport> {
    const report = await checkInvariants({
      dbUrl: this.dbUrl,
      natsUrl: this.nats.url,
      namespace: this.namespace,
      ledgerDir: this.ledgerDir,
      ...options,
    });
    await recordScenario({
      scenario: this.scenario,
      faults: this.faults,
      seconds: (Date.now() - this.#started) / 1000,
      ...extra,
      report,
    });
    return report;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const sidecar of this.#sidecars.values())
      if (sidecar.child.signalCode === "SIGSTOP") sidecar.child.kill("SIGCONT");
    await this.local.stop();
    await this.local.deleteStreams().catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Every violation of the report, one line each: empty when the scenario passed. */
export function violationsOf(report: InvariantReport): string[] {
  return Object.entries(report.violations).flatMap(([id, lines]) => lines.map((line) => `${id}: ${line}`));
}
