import { create } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CancelNotice, CancelNoticeSchema } from "../core/gen/taskframe/v1/messages_pb.js";
import { NatsControlBus } from "../core/nats/nats-control-bus.js";
import { connectTestNats, uniqueNamespace } from "./helpers/nats.js";

let hub: NatsConnection;
let sidecars: NatsConnection[];

beforeAll(async () => {
  [hub, ...sidecars] = await Promise.all([
    connectTestNats("taskframe-test-control-hub"),
    connectTestNats("taskframe-test-control-sidecar-1"),
    connectTestNats("taskframe-test-control-sidecar-2"),
  ]);
});

afterAll(async () => {
  await Promise.all([hub, ...sidecars].map((nc) => nc.close()));
});

const notice = (n: number): CancelNotice =>
  create(CancelNoticeSchema, {
    tasks: [{ taskId: `task-${n}`, attempt: 1, leaseEpoch: BigInt(n) }],
    runIds: [`run-${n}`],
    reason: `reason ${n}`,
  });

/** Collects notices until `count` arrived, 5 s passed or stop(). */
function collect(bus: NatsControlBus, count: number) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 5_000);
  const notices: CancelNotice[] = [];
  const done = (async () => {
    for await (const received of bus.cancels(controller.signal)) {
      notices.push(received);
      if (notices.length >= count) break;
    }
    clearTimeout(timer);
    return notices;
  })();
  return { done, stop: () => controller.abort() };
}

describe("NatsControlBus", () => {
  it("delivers every notice to every subscriber, in order", async () => {
    const namespace = uniqueNamespace("ctl");
    const publisher = new NatsControlBus(hub, { namespace });
    const [one, two] = sidecars.map((nc) => new NatsControlBus(nc, { namespace })) as [
      NatsControlBus,
      NatsControlBus,
    ];
    const first = collect(one, 5);
    const second = collect(two, 5);
    // subscriptions are in place once the sidecars' connections have round-tripped
    await Promise.all(sidecars.map((nc) => nc.flush()));

    for (let n = 0; n < 5; n++) await publisher.publishCancel(notice(n));
    for (const received of [await first.done, await second.done]) {
      expect(received.map((r) => r.reason)).toEqual([0, 1, 2, 3, 4].map((n) => `reason ${n}`));
      expect(received[3]?.tasks[0]?.leaseEpoch).toBe(3n);
      expect(received[3]?.runIds).toEqual(["run-3"]);
    }
  });

  it("keeps namespaces apart, and ends cancels() when the bus closes", async () => {
    const publisher = new NatsControlBus(hub, { namespace: uniqueNamespace("ctl") });
    const elsewhere = new NatsControlBus(sidecars[0]!, { namespace: uniqueNamespace("ctl") });
    const listening = collect(elsewhere, 1);
    await sidecars[0]!.flush();
    await publisher.publishCancel(notice(1));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const closedAt = Date.now();
    await elsewhere.close();
    expect(await listening.done).toEqual([]);
    expect(Date.now() - closedAt).toBeLessThan(1_000);
  });
});
