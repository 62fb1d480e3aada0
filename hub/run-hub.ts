import type { HubConfig } from "../core/config.js";
import { errorMessage } from "../core/errors.js";
import { readServerTls } from "../core/hub-tls.js";
import { createLogger } from "../core/logger.js";
import { processMetricsRegistry } from "../core/metrics.js";
import { connectNats } from "../core/nats/connect.js";
import { JetStreamEventSource } from "../core/nats/jetstream-event-bus.js";
import { JetStreamWorkQueue } from "../core/nats/jetstream-work-queue.js";
import { NatsControlBus } from "../core/nats/nats-control-bus.js";
import { NatsHostChannel } from "../core/nats/nats-host-channel.js";
import { natsOptionsOf, queueOptionsOf } from "../core/nats-options.js";
import { untilStopSignal } from "../core/stop-signal.js";
import { admissionOf } from "./admission.js";
import { Authenticator, PROTECTED_MODE_MESSAGE } from "./auth/authenticator.js";
import { DenialLog } from "./auth/denials.js";
import { loadAuthSettings } from "./auth/load-auth.js";
import { HostRegistry } from "./hosts/host-registry.js";
import { Hub } from "./hub.js";
import { AdvisoryLockLeadership } from "./leadership.js";
import { Autoscaler } from "./provisioning/autoscaler.js";
import { openProvider } from "./provisioning/open-provider.js";
import { startHubServer } from "./server.js";
import { HubStore } from "./store/hub-store.js";
import { isCurrentAttempt } from "./store/queries/current-attempt.js";

/**
 * `task hub`: the API, the recorder, retries and the reconciler (when this
 * hub leads) on Postgres and NATS JetStream. Resolves after a graceful
 * shutdown on SIGTERM or SIGINT.
 */
export async function runHub(config: HubConfig): Promise<void> {
  const logger = createLogger("taskframe-hub", config["log-level"]);
  // read before anything starts: a bad tokens file or key is a bad invocation
  const authSettings = loadAuthSettings(config);
  const tls = readServerTls({
    cert: config["tls-cert"],
    key: config["tls-key"],
    clientCa: config["tls-client-ca"],
  });
  const store = await HubStore.open({ kind: "postgres", url: config.db });
  const nc = await connectNats(natsOptionsOf(config, `taskframe-hub-${process.pid}`));
  const queueOptions = queueOptionsOf(config);
  const queue = await JetStreamWorkQueue.open(nc, queueOptions);
  const events = await JetStreamEventSource.open(nc, queueOptions);
  const control = new NatsControlBus(nc, { namespace: config.namespace });
  const leadership = new AdvisoryLockLeadership(config.db, `taskframe:leader:${config.namespace}`, logger);
  const hub = new Hub({
    store,
    queue,
    events,
    control,
    logger,
    leadership,
    metrics: processMetricsRegistry("hub"),
    ...(config.retention > 0
      ? { retention: { keepMs: config.retention, everyMs: config["retention-every"] } }
      : {}),
    reconcile: { everyMs: config["reconcile-every"], staleAfterMs: config["reconcile-after"] },
    ...(config["retry-budget"] > 0 ? { retryBudget: { perSecond: config["retry-budget"] } } : {}),
    admission: admissionOf(config),
  });
  hub.start();
  const hostChannel = new NatsHostChannel(nc, { namespace: config.namespace });
  const registry = new HostRegistry({ channel: hostChannel, database: store.database, logger });
  registry.start();
  const autoscale = config.autoscale;
  const provider = autoscale
    ? openProvider(autoscale.provider, {
        sidecarArgs: localSidecarArgs(config),
        sidecarEnv: {
          ...(config["nats-password"] ? { TASKFRAME_NATS_PASSWORD: config["nats-password"] } : {}),
          ...(config["nats-token"] ? { TASKFRAME_NATS_TOKEN: config["nats-token"] } : {}),
        },
        logger,
      })
    : undefined;
  const autoscaler =
    autoscale && provider
      ? new Autoscaler(
          {
            provider,
            pools: autoscale.pools,
            intervalMs: autoscale.interval,
            registerDeadlineMs: autoscale["register-deadline"],
            heartbeatTimeoutMs: autoscale["heartbeat-timeout"],
            drainTimeoutMs: autoscale["drain-timeout"],
          },
          { database: store.database, channel: hostChannel, leadership, logger },
        )
      : undefined;
  autoscaler?.start();
  const authenticator = new Authenticator(authSettings, async (ref) => {
    const [task] = await store.taskStates([ref.taskId]);
    return task !== undefined && isCurrentAttempt(task, ref.attempt, ref.leaseEpoch);
  });
  if (!authSettings) logger.warn(PROTECTED_MODE_MESSAGE);
  const server = await startHubServer(
    hub,
    config.listen,
    async () => {
      const problems: string[] = [];
      await store.ping().catch((error: unknown) => problems.push(`database: ${errorMessage(error)}`));
      if (nc.isClosed()) problems.push("nats: the connection is closed");
      if (hub.queueRefusal) problems.push(`queue: ${hub.queueRefusal}`);
      return problems;
    },
    { authenticator, denials: new DenialLog(store.database, logger) },
    tls,
  );
  const url = `${tls ? "https" : "http"}://${server.address}`;
  logger.info(
    { listen: server.address, namespace: config.namespace, mutualTls: Boolean(tls?.clientCa) },
    `hub listening on ${url}`,
  );
  process.stderr.write(`taskframe hub listening on ${url}\n`);

  await untilStopSignal();
  logger.info("shutting down");
  await server.close(config["shutdown-timeout"]);
  await autoscaler?.stop();
  // hosts a local provider started are this hub's children: they stop with it
  await provider?.close();
  await registry.stop();
  await hostChannel.close();
  await hub.stop();
  await queue.close();
  await events.close();
  await control.close();
  await nc.drain().catch(() => {});
  await store.close();
}

/**
 * Passed to every `task sidecar` a local provider starts: this hub's NATS,
 * namespace, queue settings and API (a NATS password or token goes through
 * the environment, not the command line).
 */
function localSidecarArgs(config: HubConfig): string[] {
  const args = ["--nats", config.nats.join(","), "--namespace", config.namespace];
  for (const key of ["replicas", "storage", "max-deliveries", "log-level"] as const)
    args.push(`--${key}`, String(config[key]));
  args.push("--ack-wait", `${config["ack-wait"]}ms`, "--dedupe-window", `${config["dedupe-window"]}ms`);
  for (const key of [
    "nats-user",
    "nats-creds",
    "nats-nkey",
    "nats-tls-ca",
    "nats-tls-cert",
    "nats-tls-key",
    "task-token-secret-file",
  ] as const) {
    const value = config[key];
    if (value) args.push(`--${key}`, value);
  }
  const separator = config.listen.lastIndexOf(":");
  const host = config.listen.slice(0, separator);
  const port = config.listen.slice(separator + 1);
  args.push("--hub", `http://${host === "" || host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`);
  return args;
}
