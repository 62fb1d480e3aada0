import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { WorkItemSchema } from "../core/gen/taskframe/v1/messages_pb.js";
import { MemoryWorkQueue } from "../core/memory-work-queue.js";
import { describeWorkQueueContract } from "./contract/work-queue-contract.js";

describeWorkQueueContract("MemoryWorkQueue", async (options) => new MemoryWorkQueue(options));

// Beyond the contract (a JetStream implementation may reject instead): the embedded mode's shutdown.
describe("MemoryWorkQueue after close", () => {
  it("ends a pending fetch, and answers later fetches with [] at once, even for a pool it never saw", async () => {
    const queue = new MemoryWorkQueue({ ackWaitMs: 300 });
    const pending = queue.consumer("seen").fetch(10, { maxWaitMs: 30_000 });
    await queue.close();
    expect(await pending).toEqual([]);

    const startedAt = Date.now();
    expect(await queue.consumer("never-seen").fetch(10, { maxWaitMs: 30_000 })).toEqual([]);
    expect(Date.now() - startedAt).toBeLessThan(1_000);
  });

  it("rejects a publish", async () => {
    const queue = new MemoryWorkQueue();
    await queue.close();
    const item = create(WorkItemSchema, { taskId: "t", attempt: 1, dispatch: 1 });
    await expect(queue.publish([item])).rejects.toThrow(/closed/);
  });
});
