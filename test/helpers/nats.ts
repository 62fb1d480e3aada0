import { randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats } from "../../core/nats/connect.js";

/** The NATS server (with JetStream) the NATS tests use. */
export const NATS_TEST_URL = process.env.TASKFRAME_TEST_NATS_URL ?? "nats://127.0.0.1:4222";

export const connectTestNats = (name: string): Promise<NatsConnection> =>
  connectNats({ servers: NATS_TEST_URL, name });

/** A namespace no other test uses: test files share the server. No `_`, so its stream prefix is its own. */
export const uniqueNamespace = (label: string): string =>
  `t${label}${randomUUID().replaceAll("-", "").slice(0, 10)}`;

/** Deletes every stream of these namespaces (`<NS>_...`). */
export async function deleteNamespaces(nc: NatsConnection, namespaces: readonly string[]): Promise<void> {
  if (namespaces.length === 0) return;
  const prefixes = namespaces.map((ns) => `${ns.toUpperCase()}_`);
  const jsm = await jetstreamManager(nc);
  const doomed: string[] = [];
  for await (const name of jsm.streams.names()) {
    if (prefixes.some((prefix) => name.startsWith(prefix))) doomed.push(name);
  }
  await Promise.all(doomed.map((name) => jsm.streams.delete(name).catch(() => false)));
}
