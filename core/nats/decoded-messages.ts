import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { AsyncQueue } from "../async-queue.js";
import { linkedSignal } from "./linked-signal.js";

/**
 * The messages of a core NATS subject, decoded, as they arrive, until any of
 * `signals` aborts. A message that does not decode is not ours: it is skipped.
 */
export async function* decodedMessages<T>(
  nc: NatsConnection,
  subject: string,
  decode: (data: Uint8Array) => T,
  signals: readonly AbortSignal[],
  options: { queue?: string } = {},
): AsyncIterable<T> {
  const linked = linkedSignal(...signals);
  const queue = new AsyncQueue<T>();
  let sub: Subscription | undefined;
  try {
    sub = nc.subscribe(subject, {
      ...options,
      callback: (error, msg) => {
        if (error) return;
        try {
          queue.push(decode(msg.data));
        } catch {
          // not ours: skip it
        }
      },
    });
    while (!linked.signal.aborted) {
      const items = await queue.take(Number.POSITIVE_INFINITY, { signal: linked.signal });
      if (items === undefined) return;
      yield* items;
    }
  } finally {
    sub?.unsubscribe();
    queue.close();
    linked.dispose();
  }
}
