import { create } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkItemSchema } from "../core/gen/taskframe/v1/messages_pb.js";
import { JetStreamWorkQueue } from "../core/nats/jetstream-work-queue.js";
import { NatsNames } from "../core/nats/names.js";
import { parseAckSubject } from "../core/nats/pull.js";
import type { DeadLetter } from "../core/work-queue.js";
import { describeWorkQueueContract } from "./contract/work-queue-contract.js";
import { connectTestNats, deleteNamespaces, uniqueNamespace } from "./helpers/nats.js";

let nc: NatsConnection;
const namespaces: string[] = [];

beforeAll(async () => {
  nc = await connectTestNats("taskframe-test-work-queue");
});

afterAll(async () => {
  await deleteNamespaces(nc, namespaces);
  await nc.close();
});

function newNamespace(): string {
  const namespace = uniqueNamespace("wq");
  namespaces.push(namespace);
  return namespace;
}

describeWorkQueueContract("JetStreamWorkQueue", (options) =>
  JetStreamWorkQueue.open(nc, { ...options, namespace: newNamespace(), storage: "memory" }),
);

const workItem = (pool: string, n: number) =>
  create(WorkItemSchema, { taskId: `task-${n}`, runId: "run", attempt: 1, dispatch: 1, spec: { pool } });

describe("JetStreamWorkQueue beyond the contract", () => {
  it("names everything from its namespace and rejects pool names that cannot be subjects", () => {
    const names = new NatsNames("acme");
    expect(names.workStream({ pool: "gpu-1" })).toBe("ACME_WORK_GPU-1");
    expect(names.workSubject({ pool: "gpu-1" }, "t1")).toBe("acme.work.gpu-1.t1");
    expect(names.workStream({ pool: "gpu-1", handler: "pkg.resize_v2" })).toBe(
      "ACME_HANDLER_GPU-1_PKG_2ERESIZE_5FV2",
    );
    expect(names.workSubject({ pool: "gpu-1", handler: "pkg.resize_v2" }, "t1")).toBe(
      "acme.handler.gpu-1.pkg_2Eresize_5Fv2.t1",
    );
    expect(names.eventStream).toBe("ACME_EVENTS");
    expect(names.eventSubject("web-1.example.com")).toBe("acme.events.web-1_example_com");
    expect(names.cancelSubject).toBe("acme.control.cancel");
    expect(() => names.workStream({ pool: "a.b" })).toThrow(/invalid pool name "a.b"/);
    expect(() => names.workStream({ pool: "" })).toThrow(/invalid pool name/);
    expect(() => names.workSubject({ pool: "gpu" }, "a.b")).toThrow(/invalid task id/);
    expect(() => new NatsNames("a.b")).toThrow(/invalid NATS namespace/);
  });

  it("parses both forms of ack subjects", () => {
    expect(parseAckSubject("$JS.ACK.S.C.2.17.5.1795741120121717685.3")).toEqual({
      stream: "S",
      consumer: "C",
      deliveryCount: 2,
      streamSequence: 17,
      consumerSequence: 5,
      pending: 3,
    });
    expect(parseAckSubject("$JS.ACK.hub.ACCHASH.S.C.1.9.9.1795741120121717685.0.r4nd0m")).toMatchObject({
      stream: "S",
      consumer: "C",
      deliveryCount: 1,
      streamSequence: 9,
    });
    expect(parseAckSubject("_INBOX.abc")).toBeUndefined();
  });

  it("recreates a pool's stream that disappeared (e.g. NATS restarted with memory storage)", async () => {
    const namespace = newNamespace();
    const queue = await JetStreamWorkQueue.open(nc, { namespace, storage: "memory", ackWaitMs: 10_000 });
    try {
      const consumer = queue.consumer("lost");
      await queue.publish([workItem("lost", 1)]);
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(queue.names.workStream({ pool: "lost" }));

      expect(await consumer.fetch(10, { maxWaitMs: 200 })).toEqual([]);
      await queue.publish([workItem("lost", 2)]);
      const leases = await consumer.fetch(10, { maxWaitMs: 5_000 });
      expect(leases.map((lease) => lease.item.taskId)).toEqual(["task-2"]);
      await leases[0]!.ack();
    } finally {
      await queue.close();
    }
  });

  it("delivers a task whose dependencies alone exceed a message, without them", async () => {
    const namespace = newNamespace();
    const queue = await JetStreamWorkQueue.open(nc, { namespace, storage: "memory", ackWaitMs: 10_000 });
    try {
      const consumer = queue.consumer("wide");
      const needs = Array.from({ length: 100_000 }, (_, i) => `upstream-task-number-${i}`);
      const item = create(WorkItemSchema, {
        taskId: "sink",
        runId: "run",
        attempt: 1,
        dispatch: 1,
        spec: {
          pool: "wide",
          name: "sink",
          needs,
          target: { case: "exec", value: { command: "/bin/true" } },
        },
      });
      await queue.publish([item]);
      const [lease] = await consumer.fetch(1, { maxWaitMs: 5_000 });
      expect(lease?.item.taskId).toBe("sink");
      expect(lease?.item.spec?.needs).toEqual([]);
      expect(lease?.item.spec?.target).toMatchObject({ case: "exec", value: { command: "/bin/true" } });
      await lease!.ack();
    } finally {
      await queue.close();
    }
  });

  it("refuses pools whose names differ only in case (they would share a stream)", async () => {
    const queue = await JetStreamWorkQueue.open(nc, { namespace: newNamespace(), storage: "memory" });
    try {
      await queue.publish([workItem("gpu", 1)]);
      await expect(queue.publish([workItem("GPU", 1)])).rejects.toThrow(/two names map to one stream/);
    } finally {
      await queue.close();
    }
  });

  it("turns an item into a dead letter even if it ran out of deliveries while nobody listened", async () => {
    const options = {
      namespace: newNamespace(),
      storage: "memory" as const,
      ackWaitMs: 200,
      maxDeliveries: 2,
    };
    const queue = await JetStreamWorkQueue.open(nc, options);
    try {
      await queue.publish([workItem("orphan", 1)]);
      const consumer = queue.consumer("orphan");
      let deliveries = 0;
      const deadline = Date.now() + 10_000;
      // two deliveries, then one more pull for the server to notice MaxDeliver
      while (deliveries < 2 && Date.now() < deadline) {
        deliveries += (await consumer.fetch(10, { maxWaitMs: 500 })).length;
      }
      expect(await consumer.fetch(10, { maxWaitMs: 600 })).toEqual([]);
      expect(deliveries).toBe(2);

      const controller = new AbortController();
      const letters: DeadLetter[] = [];
      const timeout = setTimeout(() => controller.abort(), 10_000);
      for await (const letter of queue.deadLetters(controller.signal)) {
        letters.push(letter);
        controller.abort();
      }
      clearTimeout(timeout);
      expect(letters.map((l) => [l.item.taskId, l.deliveries])).toEqual([["task-1", 2]]);
      expect(await queue.queued([{ pool: "orphan", taskId: "task-1" }])).toEqual(new Set());
    } finally {
      await queue.close();
    }
  });

  it("ends a pending fetch on close, and answers later fetches with []", async () => {
    const queue = await JetStreamWorkQueue.open(nc, { namespace: newNamespace(), storage: "memory" });
    const pending = queue.consumer("closing").fetch(10, { maxWaitMs: 30_000 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const closedAt = Date.now();
    await queue.close();
    expect(await pending).toEqual([]);
    expect(Date.now() - closedAt).toBeLessThan(2_000);
    expect(await queue.consumer("never-seen").fetch(10, { maxWaitMs: 30_000 })).toEqual([]);
    await expect(queue.publish([workItem("closing", 1)])).rejects.toThrow(/closed/);
  });
});
