import type { NatsConnection } from "@nats-io/transport-node";

/*
 * Pull requests live on the server: after a reconnect (the server restarted,
 * or we moved to another one) the open ones are gone and would never be
 * answered. Whoever waits on one registers here to learn of reconnects at
 * once. One status watcher per connection, however many requests.
 */

const listeners = new WeakMap<NatsConnection, Set<() => void>>();

/** Calls `listener` after each reconnect of `nc` until the returned function is called. */
export function onReconnect(nc: NatsConnection, listener: () => void): () => void {
  let set = listeners.get(nc);
  if (!set) {
    const created = new Set<() => void>();
    set = created;
    listeners.set(nc, created);
    void (async () => {
      // ends when the connection closes
      for await (const status of nc.status()) {
        if (status.type === "reconnect") for (const notify of [...created]) notify();
      }
    })().catch(() => {});
  }
  const registered = set;
  registered.add(listener);
  return () => {
    registered.delete(listener);
  };
}
