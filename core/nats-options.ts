import type { HubConfig, SidecarConfig } from "./config.js";

/** The NATS part of a hub's or sidecar's configuration, as connectNats takes it. */
export function natsOptionsOf(config: HubConfig | SidecarConfig, name: string) {
  return {
    servers: config.nats,
    name,
    ...(config["nats-user"] ? { user: config["nats-user"] } : {}),
    ...(config["nats-password"] ? { pass: config["nats-password"] } : {}),
    ...(config["nats-token"] ? { token: config["nats-token"] } : {}),
    ...(config["nats-creds"] ? { credsFile: config["nats-creds"] } : {}),
    ...(config["nats-nkey"] ? { nkeyFile: config["nats-nkey"] } : {}),
    ...(config["nats-tls-ca"] || config["nats-tls-cert"]
      ? {
          tls: {
            ...(config["nats-tls-ca"] ? { caFile: config["nats-tls-ca"] } : {}),
            ...(config["nats-tls-cert"] ? { certFile: config["nats-tls-cert"] } : {}),
            ...(config["nats-tls-key"] ? { keyFile: config["nats-tls-key"] } : {}),
          },
        }
      : {}),
  };
}

/** The queue settings every process of a namespace must agree on. */
export function queueOptionsOf(config: HubConfig | SidecarConfig) {
  return {
    namespace: config.namespace,
    ackWaitMs: config["ack-wait"],
    maxDeliveries: config["max-deliveries"],
    dedupeWindowMs: config["dedupe-window"],
    replicas: config.replicas,
    storage: config.storage,
  };
}
