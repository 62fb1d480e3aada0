import { tmpdir } from "node:os";
import { dirname } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { bearer } from "../core/bearer.js";
import type { SidecarConfig } from "../core/config.js";
import { loadWorkerPools } from "../core/definitions/worker-pools.js";
import { HubService } from "../core/gen/taskframe/v1/hub_pb.js";
import { PROVIDER_HOST_ID_ENV } from "../core/host-channel.js";
import { readClientTls } from "../core/hub-tls.js";
import { createLogger } from "../core/logger.js";
import { processMetricsRegistry, serveMetrics } from "../core/metrics.js";
import { connectNats } from "../core/nats/connect.js";
import { JetStreamEventSink } from "../core/nats/jetstream-event-bus.js";
import { JetStreamWorkQueue } from "../core/nats/jetstream-work-queue.js";
import { NatsControlBus } from "../core/nats/nats-control-bus.js";
import { NatsHostChannel } from "../core/nats/nats-host-channel.js";
import { natsOptionsOf, queueOptionsOf } from "../core/nats-options.js";
import { untilStopSignal } from "../core/stop-signal.js";
import { loadTaskTokenSecret } from "../core/task-token.js";
import { HostReporter } from "./host-reporter.js";
import { defaultInstallCacheDir, InstallCache } from "./install/install-cache.js";
import { jailConfigOf } from "./jail/jail-config.js";
import { openJail } from "./jail/open-jail.js";
import { WorkerPool } from "./runner/worker-pool.js";
import { Sidecar } from "./sidecar.js";
import { defaultSlots } from "./slots.js";
import { killLeftovers } from "./spawner/process-ledger.js";
import { Spawner, writeSeccompFilter } from "./spawner/spawner.js";

/**
 * `task sidecar`: leases work of its pools from NATS and runs it on this
 * host. On start it kills what a crashed predecessor left running; on
 * SIGTERM it drains (no new work; running tasks finish within the drain
 * timeout, else are handed back to the queue).
 */
export async function runSidecar(config: SidecarConfig): Promise<void> {
  const logger = createLogger("taskframe-sidecar", config["log-level"]);
  // read before anything starts: a bad worker file is a bad invocation
  const poolSpecs = (await Promise.all(config.workers.map((file) => loadWorkerPools(file)))).flat();
  const leftovers = killLeftovers(config.ledgerDir);
  if (leftovers.length > 0)
    logger.warn({ pids: leftovers }, "killed task processes a previous sidecar left running");
  const nc = await connectNats(natsOptionsOf(config, `taskframe-sidecar-${config.host}`));
  const queueOptions = queueOptionsOf(config);
  const queue = await JetStreamWorkQueue.open(nc, queueOptions);
  const events = await JetStreamEventSink.open(nc, { ...queueOptions, host: config.host });
  const control = new NatsControlBus(nc, { namespace: config.namespace });
  const hubToken = config["hub-token"];
  const hub = config.hub
    ? createClient(
        HubService,
        createConnectTransport({
          baseUrl: config.hub,
          httpVersion: "1.1",
          interceptors: hubToken ? [bearer(hubToken)] : [],
          nodeOptions: readClientTls({
            ca: config["hub-tls-ca"],
            cert: config["hub-tls-cert"],
            key: config["hub-tls-key"],
          }),
        }),
      )
    : undefined;
  const taskTokenSecret = loadTaskTokenSecret(config["task-token-secret-file"]);
  const spawner = new Spawner({ logger, ledgerDir: config.ledgerDir });
  const jail = await openJail(
    {
      ...jailConfigOf(config),
      stateDir: config.ledgerDir,
      hidden: [dirname(config.socketPath)].filter((dir) => dir !== tmpdir()),
      nativeSpawner: spawner.native,
      writeSeccompFilter,
    },
    logger,
  );
  if (jail.profile === "none" && config.jail === "auto")
    logger.warn(`tasks run without a jail on this host: ${jail.problems.join("; ")} (see task doctor)`);
  const installs = new InstallCache({
    dir: config["install-cache"] ?? defaultInstallCacheDir(),
    maxBytes: Number(config["install-cache-size"]),
    allowApt: config["allow-apt"],
    logger,
  });
  const metrics = config["metrics-listen"] ? processMetricsRegistry("sidecar") : undefined;
  const slots = config.slots ?? defaultSlots();
  const sidecar = new Sidecar({
    ...(metrics ? { metrics } : {}),
    queue,
    events,
    control,
    pools: config.pool,
    host: config.host,
    slots,
    heartbeatMs: Math.max(100, Math.floor(config["ack-wait"] / 3)),
    ackWaitMs: config["ack-wait"],
    killGraceMs: config["kill-grace"],
    allowEnv: config["allow-env"],
    logMaxBytes: config["log-max-bytes"],
    launch: spawner.run,
    jail,
    installs,
    ...(config.hub ? { hubUrl: config.hub } : {}),
    ...(config["hub-tls-ca"] ? { hubTlsCa: config["hub-tls-ca"] } : {}),
    ...(taskTokenSecret ? { taskTokenSecret } : {}),
    runner: {
      socketPath: config.socketPath,
      ...(config["runner-listen"] ? { tcp: hostPort(config["runner-listen"]) } : {}),
    },
    ...(hub
      ? {
          taskStates: async (ids) =>
            (await hub.getTaskStates({ taskIds: [...ids] })).tasks.map((t) => ({
              taskId: t.taskId,
              state: t.state,
              attempt: t.attempt,
            })),
          payloads: {
            // events travel in batches: keep each result well under a message
            inlineOutputBytes: 256 * 1024,
            fetchInput: (taskId) => hub.getTaskInput({ taskId }),
            storeOutput: async (output) => {
              await hub.putTaskOutput({
                taskId: output.taskId,
                attempt: output.attempt,
                leaseEpoch: BigInt(output.leaseEpoch),
                output: output.data,
                contentType: output.contentType,
              });
            },
          },
          readChildren: async (parentTaskId, keys) =>
            (await hub.getChildren({ parentTaskId, keys })).children,
          spawnTasks: async (request) =>
            (await hub.spawnTasks({ ...request, leaseEpoch: BigInt(request.leaseEpoch) })).children,
        }
      : {}),
    logger,
  });
  await sidecar.start();
  const hostChannel = new NatsHostChannel(nc, { namespace: config.namespace });
  let drainRequested: (() => void) | undefined;
  const drainAsked = new Promise<void>((resolve) => {
    drainRequested = resolve;
  });
  const reporter = new HostReporter({
    channel: hostChannel,
    host: config.host,
    providerHostId: process.env[PROVIDER_HOST_ID_ENV] ?? "",
    pools: config.pool,
    slots,
    labels: config.labels,
    load: () => ({ running: sidecar.busy, draining: sidecar.state !== "running" }),
    onDrain: (reason) => {
      logger.info({ reason }, "a hub asked this host to drain");
      drainRequested?.();
    },
    intervalMs: HEARTBEAT_INTERVAL_MS,
    logger,
  });
  reporter.start();
  const metricsServer =
    metrics && config["metrics-listen"]
      ? await serveMetrics(metrics, hostPort(config["metrics-listen"]))
      : undefined;
  if (metricsServer) logger.info({ metrics: metricsServer.address }, "serving metrics");
  const pools = poolSpecs.map((spec) => {
    const pool = new WorkerPool(spec, {
      socketPath: config.socketPath,
      logger,
      jail: { jail, launch: spawner.run, host: config.host },
    });
    pool.start();
    return pool;
  });
  logger.info(
    { pools: config.pool, host: config.host, namespace: config.namespace, jail: jail.profile },
    "sidecar leasing work",
  );
  const endpoints = sidecar.runnerAddresses.join(" and ");
  process.stderr.write(
    `taskframe sidecar ${config.host} leasing pools ${config.pool.join(", ")} (jail: ${jail.profile}); workers connect to ${endpoints}\n`,
  );

  // SIGTERM, or a hub's drain request (the autoscaler removing this host): drain and stop
  await untilStopSignal(drainAsked);
  logger.info("draining");
  for (const pool of pools) pool.stopRestarting();
  await sidecar.stop(config["drain-timeout"]);
  await metricsServer?.close();
  await Promise.all(pools.map((pool) => pool.stop()));
  await spawner.close();
  // runs outlive a sidecar: their directories stay for its successor (swept when idle for a day)
  await jail.close(false);
  await queue.close();
  await control.close();
  // "stopped" goes last: on it the autoscaler deletes the host, which may end this process
  await reporter.stop();
  await hostChannel.close();
  await nc.drain().catch(() => {});
}

/** How often the hubs hear from this host; the autoscaler counts a host lost after several missed. */
const HEARTBEAT_INTERVAL_MS = 2_000;

function hostPort(listen: string): { host: string; port: number } {
  const separator = listen.lastIndexOf(":");
  return { host: listen.slice(0, separator) || "127.0.0.1", port: Number(listen.slice(separator + 1)) };
}
