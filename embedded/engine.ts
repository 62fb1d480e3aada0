import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Client, createClient, createRouterTransport, type Transport } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { WorkerPoolSpec } from "../core/definitions/worker-pools.js";
import { MemoryControlBus, MemoryEventBus } from "../core/event-bus.js";
import { HubService } from "../core/gen/taskframe/v1/hub_pb.js";
import { type Logger, silentLogger } from "../core/logger.js";
import { MemoryWorkQueue } from "../core/memory-work-queue.js";
import { DEFAULT_POOL } from "../core/work-queue.js";
import { createHubService } from "../hub/api/hub-service.js";
import { Hub, type HubOptions } from "../hub/hub.js";
import type { DatabaseTarget } from "../hub/store/database.js";
import { HubStore } from "../hub/store/hub-store.js";
import { defaultInstallCacheDir, InstallCache } from "../sidecar/install/install-cache.js";
import type { Jail } from "../sidecar/jail/jail.js";
import { DEFAULT_JAIL_CONFIG, type JailConfig } from "../sidecar/jail/jail-config.js";
import { openJail } from "../sidecar/jail/open-jail.js";
import { WorkerPool } from "../sidecar/runner/worker-pool.js";
import { Sidecar } from "../sidecar/sidecar.js";
import { defaultSlots } from "../sidecar/slots.js";
import { killLeftovers } from "../sidecar/spawner/process-ledger.js";
import { Spawner, writeSeccompFilter } from "../sidecar/spawner/spawner.js";
import { DataDirLock } from "./data-dir-lock.js";

export interface EmbeddedOptions {
  /** Where the embedded store lives. @default ./.taskframe */
  dataDir: string;
  /** Store override (tests run the same engine on a real Postgres). @default PGlite in dataDir */
  database?: DatabaseTarget;
  /** @default 8 per core */
  slots?: number;
  /** Lease length of the in-process queue. @default 30_000 */
  ackWaitMs?: number;
  killGraceMs?: number;
  logMaxBytes?: number;
  /** Run a sidecar in this process (false: a hub over the store only, for reading). @default true */
  sidecar?: boolean;
  /**
   * Fire the schedules registered in the store (`task dev`); `task run` does
   * not. An object: fire, with the scheduler's clock and sleep (tests).
   * @default false
   */
  schedules?: boolean | NonNullable<HubOptions["schedules"]>;
  /** The jail executables run in and its limits' defaults. @default DEFAULT_JAIL_CONFIG (standard where the host supports it) */
  jail?: Partial<JailConfig>;
  /** Where declared dependencies (`[Install]`) are installed. @default defaultInstallCacheDir() */
  installCacheDir?: string;
  /** SDK worker processes to start and keep running (their output goes to DATA_DIR/workers/). */
  workerPools?: readonly WorkerPoolSpec[];
  logger?: Logger;
  /** Pool policies and size limits of submissions (hub/admission.ts). @default DEFAULT_ADMISSION */
  admission?: HubOptions["admission"];
  /** At most this many retries released per second. @default no limit */
  retryBudget?: HubOptions["retryBudget"];
}

/**
 * Hub and sidecar in one process, on embedded PGlite and in-process
 * channels: the same components as the distributed mode, wired in memory.
 */
export class EmbeddedEngine implements AsyncDisposable {
  readonly transport: Transport;
  #server: Server | undefined;
  #socketPath: string | undefined;
  #closed: Promise<void> | undefined;

  private constructor(
    readonly dataDir: string,
    readonly store: HubStore,
    readonly hub: Hub,
    readonly sidecar: Sidecar | undefined,
    readonly queue: MemoryWorkQueue,
    private readonly lock: DataDirLock,
    private readonly channels: {
      events: MemoryEventBus;
      control: MemoryControlBus;
      spawner: Spawner | undefined;
      pools: WorkerPool[];
      jail: Jail | undefined;
    },
  ) {
    const service = createHubService(hub);
    this.transport = createRouterTransport((router) => router.service(HubService, service));
  }

  static async open(options: EmbeddedOptions): Promise<EmbeddedEngine> {
    const dataDir = resolve(options.dataDir);
    const logger = options.logger ?? silentLogger;
    // another task command may hold the directory for a moment (a reader): wait for it
    const lock = await DataDirLock.acquire(dataDir, 15_000);
    let store: HubStore | undefined;
    try {
      store = await HubStore.open(options.database ?? { kind: "pglite", dataDir: join(dataDir, "pglite") });
      const ackWaitMs = options.ackWaitMs ?? 30_000;
      // one host runs everything: every pool's work goes to the local sidecar
      const queue = new MemoryWorkQueue({ ackWaitMs, routeAllTo: DEFAULT_POOL });
      const events = new MemoryEventBus();
      const control = new MemoryControlBus();
      const schedules = options.schedules ?? false;
      const hub = new Hub({
        store,
        queue,
        events,
        control,
        logger,
        schedules: typeof schedules === "boolean" ? { fire: schedules } : { fire: true, ...schedules },
        ...(options.admission ? { admission: options.admission } : {}),
        ...(options.retryBudget ? { retryBudget: options.retryBudget } : {}),
      });
      let sidecar: Sidecar | undefined;
      let spawner: Spawner | undefined;
      let engineJail: Jail | undefined;
      const pools: WorkerPool[] = [];
      if (options.sidecar !== false) {
        // Tasks a killed predecessor left running are stopped; the store makes this process large,
        // so tasks are forked from a small helper instead.
        const ledgerDir = join(dataDir, "processes");
        killLeftovers(ledgerDir);
        spawner = new Spawner({ logger, ledgerDir });
        const jail = await openJail(
          {
            ...DEFAULT_JAIL_CONFIG,
            ...options.jail,
            stateDir: ledgerDir,
            hidden: [dataDir],
            nativeSpawner: spawner.native,
            writeSeccompFilter,
          },
          logger,
        );
        // The in-process queue died with the previous process; whatever it held is gone.
        await store.abandonUnfinishedRuns(
          "abandoned: the task process running it exited before the run finished",
        );
        engineJail = jail;
        sidecar = new Sidecar({
          queue,
          events,
          control,
          host: "embedded",
          slots: options.slots ?? defaultSlots(),
          heartbeatMs: Math.max(10, Math.floor(ackWaitMs / 3)),
          ackWaitMs,
          ...(options.killGraceMs === undefined ? {} : { killGraceMs: options.killGraceMs }),
          ...(options.logMaxBytes === undefined ? {} : { logMaxBytes: options.logMaxBytes }),
          launch: spawner.run,
          jail,
          installs: new InstallCache({
            dir: options.installCacheDir ?? defaultInstallCacheDir(),
            maxBytes: 10 * 2 ** 30,
            allowApt: false,
            logger,
          }),
          runner: { socketPath: socketPathFor(jail.socketDir ?? dataDir, "runner.sock") },
          taskStates: (ids) => hub.store.taskStates(ids),
          spawnTasks: (request) => hub.spawn(request),
          readChildren: (parentTaskId, keys) => hub.store.readChildren(parentTaskId, keys),
          hubUrl: `unix:${socketPathFor(jail.socketDir ?? dataDir, "hub.sock")}`,
          logger,
        });
        hub.start();
        await sidecar.start();
        const socketPath = sidecar.runnerAddresses[0];
        if (socketPath) {
          for (const spec of options.workerPools ?? []) {
            const pool = new WorkerPool(spec, {
              socketPath,
              logger,
              logDir: join(dataDir, "workers"),
              jail: { jail, launch: spawner.run, host: "embedded" },
            });
            pool.start();
            pools.push(pool);
          }
        }
      }
      const engine = new EmbeddedEngine(dataDir, store, hub, sidecar, queue, lock, {
        events,
        control,
        spawner,
        pools,
        jail: engineJail,
      });
      if (engineJail && engineJail.profile !== "none") await engine.listen();
      return engine;
    } catch (error) {
      await store?.close();
      lock.release();
      throw error;
    }
  }

  /** The jail its tasks run in (undefined without a sidecar). */
  get jail(): Jail | undefined {
    return this.channels.jail;
  }

  /** Where SDK workers connect to serve handler tasks (TASKFRAME_SOCKET). */
  get runnerSocket(): string | undefined {
    return this.sidecar?.runnerAddresses[0];
  }

  /** The spawner helper's pid, once it has started a task. */
  get spawnerPid(): number | undefined {
    return this.channels.spawner?.pid;
  }

  /** A client of this engine's hub API, in memory. */
  client(): Client<typeof HubService> {
    return createClient(HubService, this.transport);
  }

  /** Serves the hub API on a unix socket, so that other `task` commands can follow this engine live. */
  async serve(): Promise<string> {
    const socketPath = await this.listen();
    this.lock.announce(socketPath);
    return socketPath;
  }

  /**
   * Serves the hub API on its unix socket without announcing it: done as the
   * engine opens, since a jailed task reaches the socket (for `task spawn`)
   * only through a bind mount, which needs it to exist when the task starts.
   */
  async listen(): Promise<string> {
    if (this.#socketPath) return this.#socketPath;
    const socketPath = socketPathFor(this.channels.jail?.socketDir ?? this.dataDir, "hub.sock");
    rmSync(socketPath, { force: true });
    const service = createHubService(this.hub);
    const server = createServer(
      connectNodeAdapter({ routes: (router) => router.service(HubService, service) }),
    );
    await new Promise<void>((resolveListen, reject) => {
      server.once("error", reject);
      server.listen(socketPath, () => resolveListen());
    });
    await this.channels.jail?.shareSocket(socketPath, "embedded");
    server.unref();
    this.#server = server;
    this.#socketPath = socketPath;
    return socketPath;
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    if (this.#server) {
      this.#server.closeAllConnections();
      await new Promise<void>((done) => this.#server?.close(() => done()));
      if (this.#socketPath) rmSync(this.#socketPath, { force: true });
    }
    for (const pool of this.channels.pools) pool.stopRestarting();
    await this.sidecar?.stop();
    await Promise.all(this.channels.pools.map((pool) => pool.stop()));
    await this.channels.spawner?.close();
    // the runs ended with this process: their shared directories go too
    await this.channels.jail?.close(true);
    await this.hub.stop();
    this.channels.events.close();
    this.channels.control.close();
    await this.queue.close();
    await this.store.close();
    this.lock.release();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Unix socket paths are limited to ~107 bytes: long data dirs get their sockets in the temp dir. */
function socketPathFor(dataDir: string, name: string): string {
  const inside = join(dataDir, name);
  if (Buffer.byteLength(inside) < 100) return inside;
  const hash = createHash("sha256").update(dataDir).digest("hex").slice(0, 16);
  return join(tmpdir(), `taskframe-${hash}-${name}`);
}
