import type { HubConfig } from "../core/config.js";
import { errorMessage } from "../core/errors.js";
import { createLogger } from "../core/logger.js";
import { processMetricsRegistry } from "../core/metrics.js";
import { connectNats } from "../core/nats/connect.js";
import { JetStreamEventSource } from "../core/nats/jetstream-event-bus.js";
import { JetStreamWorkQueue } from "../core/nats/jetstream-work-queue.js";
import { NatsControlBus } from "../core/nats/nats-control-bus.js";
import { natsOptionsOf, queueOptionsOf } from "../core/nats-options.js";
import { Hub } from "./hub.js";
import { AdvisoryLockLeadership } from "./leadership.js";
import { startHubServer } from "./server.js";
import { HubStore } from "./store/hub-store.js";

/**
 * `task hub`: the API, the recorder, retries and the reconciler (when this
 * hub leads) on Postgres and NATS JetStream. Resolves after a graceful
 * shutdown on SIGTERM or SIGINT.
 */
export async function runHub(config: HubConfig): Promise<void> {
  const logger = createLogger("taskframe-hub", config["log-level"]);
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
    ...(config.retention > 0 ? { retention: { keepMs: config.retention } } : {}),
    reconcile: { everyMs: config["reconcile-every"], staleAfterMs: config["reconcile-after"] },
  });
  hub.start();
  const server = await startHubServer(hub, config.listen, async () => {
    const problems: string[] = [];
    await store.ping().catch((error: unknown) => problems.push(`database: ${errorMessage(error)}`));
    if (nc.isClosed()) problems.push("nats: the connection is closed");
    return problems;
  });
  logger.info(
    { listen: server.address, namespace: config.namespace },
    `hub listening on http://${server.address}`,
  );
  process.stderr.write(`taskframe hub listening on http://${server.address}\n`);

  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      resolve();
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
  logger.info("shutting down");
  await server.close(config["shutdown-timeout"]);
  await hub.stop();
  await queue.close();
  await events.close();
  await control.close();
  await nc.drain().catch(() => {});
  await store.close();
}
