import { create } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReceivedEvents } from "../core/event-bus.js";
import { eventBatch } from "../core/event-bus.js";
import {
  type LogChunk,
  LogChunkSchema,
  type StateTransition,
  StateTransitionSchema,
} from "../core/gen/taskframe/v1/messages_pb.js";
import { JetStreamEventSink, JetStreamEventSource } from "../core/nats/jetstream-event-bus.js";
import { splitEventBatch } from "../core/nats/split-event-batch.js";
import { TaskState } from "../core/states.js";
import { connectTestNats, deleteNamespaces, uniqueNamespace } from "./helpers/nats.js";

let nc: NatsConnection;
const namespaces: string[] = [];

beforeAll(async () => {
  nc = await connectTestNats("taskframe-test-event-bus");
});

afterAll(async () => {
  await deleteNamespaces(nc, namespaces);
  await nc.close();
});

function newNamespace(): string {
  const namespace = uniqueNamespace("ev");
  namespaces.push(namespace);
  return namespace;
}

const transition = (host: string, n: number): StateTransition =>
  create(StateTransitionSchema, {
    taskId: `${host}-task-${n}`,
    runId: "run",
    attempt: 1,
    leaseEpoch: 1n,
    to: TaskState.RUNNING,
    atUnixMs: BigInt(n),
    host,
  });

const logChunk = (taskId: string, seq: number, bytes: number): LogChunk =>
  create(LogChunkSchema, {
    taskId,
    runId: "run",
    attempt: 1,
    seq,
    data: new Uint8Array(bytes).fill(seq % 251),
  });

/** Receives (and acks) until `done` says so or `timeoutMs` passes; returns every received batch. */
async function receiveUntil(
  source: JetStreamEventSource,
  done: (received: readonly ReceivedEvents[]) => boolean,
  { timeoutMs = 10_000, ack = true } = {},
): Promise<ReceivedEvents[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const received: ReceivedEvents[] = [];
  try {
    for await (const events of source.receive(controller.signal)) {
      received.push(events);
      if (ack) await events.ack();
      if (done(received)) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return received;
}

const transitionsOf = (received: readonly ReceivedEvents[]) => received.flatMap((r) => r.transitions);

describe("JetStream event bus", () => {
  it("delivers the events of two sinks in order per sink, merged into batches", async () => {
    const namespace = newNamespace();
    const [a, b] = await Promise.all([
      JetStreamEventSink.open(nc, { namespace, host: "host-a", storage: "memory" }),
      JetStreamEventSink.open(nc, { namespace, host: "host-b.example.com", storage: "memory" }),
    ]);
    const source = await JetStreamEventSource.open(nc, { namespace, storage: "memory" });
    try {
      for (let n = 0; n < 20; n++) {
        await Promise.all([
          a.publish(eventBatch([transition("a", n)])),
          b.publish(eventBatch([transition("b", 2 * n), transition("b", 2 * n + 1)])),
        ]);
      }
      const received = await receiveUntil(source, (r) => transitionsOf(r).length >= 60);

      const ids = transitionsOf(received).map((t) => t.taskId);
      expect(ids.filter((id) => id.startsWith("a-"))).toEqual(
        Array.from({ length: 20 }, (_, n) => `a-task-${n}`),
      );
      expect(ids.filter((id) => id.startsWith("b-"))).toEqual(
        Array.from({ length: 40 }, (_, n) => `b-task-${n}`),
      );
      // published before the first receive: they arrive merged, not one message at a time
      expect(received.length).toBeLessThan(40);
      expect(await source.backlog()).toBe(0);
    } finally {
      await source.close();
    }
  });

  it("splits a batch larger than the server's max_payload and delivers it whole", async () => {
    const namespace = newNamespace();
    const sink = await JetStreamEventSink.open(nc, { namespace, host: "big", storage: "memory" });
    const source = await JetStreamEventSource.open(nc, { namespace, storage: "memory" });
    try {
      const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
      const chunkBytes = 64 * 1024;
      const logs = Array.from({ length: Math.ceil((2.5 * maxPayload) / chunkBytes) }, (_, seq) =>
        logChunk("big-task", seq, chunkBytes),
      );
      const done = transition("big", 1);
      await sink.publish(eventBatch([done], logs));

      const received = await receiveUntil(source, (r) => transitionsOf(r).length >= 1);
      const receivedLogs = received.flatMap((r) => r.logs);
      expect(receivedLogs.map((l) => l.seq)).toEqual(logs.map((l) => l.seq));
      expect(receivedLogs.every((l, i) => Buffer.from(l.data).equals(Buffer.from(logs[i]!.data)))).toBe(true);
      expect(transitionsOf(received).map((t) => t.taskId)).toEqual([done.taskId]);
    } finally {
      await source.close();
    }
  });

  it("cuts batches below the limit, logs first", () => {
    const logs = Array.from({ length: 10 }, (_, seq) => logChunk("t", seq, 1_000));
    const parts = splitEventBatch(eventBatch([transition("h", 1)], logs), 2_500);
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) expect(part.length).toBeLessThanOrEqual(2_500);
    expect(() => splitEventBatch(eventBatch([], [logChunk("t", 0, 5_000)]), 2_500)).toThrow(
      /log chunk 0 of task t is \d+ bytes, more than the 2500 bytes/,
    );
  });

  it("redelivers a batch that was not acked: at once when the hub lets go, after the ack wait if it died", async () => {
    const namespace = newNamespace();
    const sink = await JetStreamEventSink.open(nc, { namespace, host: "h", storage: "memory" });
    const options = { namespace, storage: "memory" as const, recorderAckWaitMs: 1_000 };
    const source = await JetStreamEventSource.open(nc, options);
    try {
      await sink.publish(eventBatch([transition("h", 1)]));

      // a hub that stops before recording: the batch is handed back
      const letGo = await receiveUntil(source, () => true, { ack: false });
      expect(transitionsOf(letGo).map((t) => t.taskId)).toEqual(["h-task-1"]);
      const startedAt = Date.now();
      const again = await receiveUntil(source, () => true, { ack: false, timeoutMs: 5_000 });
      expect(transitionsOf(again).map((t) => t.taskId)).toEqual(["h-task-1"]);
      expect(Date.now() - startedAt).toBeLessThan(900);

      // a hub that dies while recording: nothing hands the batch back, the ack wait does
      const doomed = await connectTestNats("taskframe-test-event-bus-doomed");
      const dying = await JetStreamEventSource.open(doomed, options);
      const iterator = dying.receive(new AbortController().signal)[Symbol.asyncIterator]();
      const held = await iterator.next();
      expect(held.done).toBe(false);
      const diedAt = Date.now();
      await doomed.close();
      const redelivered = await receiveUntil(source, () => true, { timeoutMs: 10_000 });
      expect(transitionsOf(redelivered).map((t) => t.taskId)).toEqual(["h-task-1"]);
      expect(Date.now() - diedAt).toBeGreaterThanOrEqual(500);
      await iterator.return?.();
    } finally {
      await source.close();
    }
  });

  it("keeps a batch that is being recorded for longer than the ack wait", async () => {
    const namespace = newNamespace();
    const sink = await JetStreamEventSink.open(nc, { namespace, host: "slow", storage: "memory" });
    const options = { namespace, storage: "memory" as const, recorderAckWaitMs: 600 };
    const [slow, other] = await Promise.all([
      JetStreamEventSource.open(nc, options),
      JetStreamEventSource.open(nc, options),
    ]);
    const controller = new AbortController();
    const iterator = slow.receive(controller.signal)[Symbol.asyncIterator]();
    try {
      await sink.publish(eventBatch([transition("slow", 1)]));
      const held = await iterator.next();
      if (held.done) throw new Error("receive ended");
      expect(held.value.transitions.map((t) => t.taskId)).toEqual(["slow-task-1"]);

      // another hub polls while this one records for more than three ack waits
      const stolen = await receiveUntil(other, () => true, { timeoutMs: 2_000 });
      await held.value.ack();
      expect(transitionsOf(stolen)).toEqual([]);
      expect(await slow.backlog()).toBe(0);
    } finally {
      controller.abort();
      await iterator.return?.();
      await Promise.all([slow.close(), other.close()]);
    }
  });

  it("counts the backlog: published, not yet recorded", async () => {
    const namespace = newNamespace();
    const sink = await JetStreamEventSink.open(nc, { namespace, host: "h", storage: "memory" });
    const source = await JetStreamEventSource.open(nc, { namespace, storage: "memory" });
    try {
      expect(await source.backlog()).toBe(0);
      for (let n = 0; n < 3; n++) await sink.publish(eventBatch([transition("h", n)]));
      expect(await source.backlog()).toBe(3);

      const controller = new AbortController();
      const iterator = source.receive(controller.signal)[Symbol.asyncIterator]();
      const first = await iterator.next();
      expect(first.done).toBe(false);
      // received but not recorded yet: still backlog
      expect(await source.backlog()).toBe(3);
      await first.value!.ack();
      expect(await source.backlog()).toBe(0);
      controller.abort();
      await iterator.return?.();
    } finally {
      await source.close();
    }
  });

  it("shares the work between two sources (two hubs) on the one consumer", async () => {
    const namespace = newNamespace();
    const sink = await JetStreamEventSink.open(nc, { namespace, host: "h", storage: "memory" });
    const options = { namespace, storage: "memory" as const, maxMessagesPerBatch: 10 };
    const sources = await Promise.all([
      JetStreamEventSource.open(nc, options),
      JetStreamEventSource.open(nc, options),
    ]);
    try {
      const total = 200;
      await Promise.all(
        Array.from({ length: total }, (_, n) => sink.publish(eventBatch([transition("h", n)]))),
      );
      const seen = new Set<string>();
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 10_000);
      const perSource = await Promise.all(
        sources.map(async (source) => {
          const ids: string[] = [];
          for await (const events of source.receive(controller.signal)) {
            expect(events.transitions.length).toBeLessThanOrEqual(10);
            // a little recording time, so that the other source pulls meanwhile
            await new Promise((resolve) => setTimeout(resolve, 5));
            await events.ack();
            for (const t of events.transitions) {
              ids.push(t.taskId);
              seen.add(t.taskId);
            }
            if (seen.size >= total) controller.abort();
          }
          return ids;
        }),
      );
      clearTimeout(timer);
      const [one, two] = perSource as [string[], string[]];
      expect(one.length).toBeGreaterThan(0);
      expect(two.length).toBeGreaterThan(0);
      expect(one.filter((id) => two.includes(id))).toEqual([]);
      expect(one.length + two.length).toBe(total);
    } finally {
      await Promise.all(sources.map((source) => source.close()));
    }
  });
});
