import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import type { EventSink } from "../core/event-bus.js";
import { type EventBatch, StateTransitionSchema } from "../core/gen/taskframe/v1/messages_pb.js";
import { silentLogger } from "../core/logger.js";
import { TaskState } from "../core/states.js";
import { EventPublisher } from "./event-publisher.js";

class RecordingSink implements EventSink {
  readonly batches: EventBatch[] = [];
  async publish(batch: EventBatch): Promise<void> {
    this.batches.push(batch);
  }
}

const transition = (taskId: string, to: TaskState, at: number, leaseEpoch = 1n) =>
  create(StateTransitionSchema, { taskId, runId: "r", attempt: 1, leaseEpoch, to, atUnixMs: BigInt(at) });

const sent = (sink: RecordingSink) =>
  sink.batches.map((b) => b.transitions.map((t) => `${t.taskId}:${TaskState[t.to]}@${t.startedAtUnixMs}`));

describe("EventPublisher", () => {
  it("sends an outcome whose RUNNING is still queued as one event carrying the start", async () => {
    const sink = new RecordingSink();
    const publisher = new EventPublisher(sink, silentLogger, 1_000);
    const published = [
      publisher.transition(transition("a", TaskState.RUNNING, 10)),
      publisher.transition(transition("b", TaskState.RUNNING, 11)),
      publisher.transition(transition("a", TaskState.SUCCEEDED, 12)),
    ];
    await publisher.flush();
    await Promise.all(published);
    expect(sent(sink)).toEqual([["a:SUCCEEDED@10", "b:RUNNING@0"]]);
  });

  it("keeps a RUNNING that was already published, and one of another lease, apart from the outcome", async () => {
    const sink = new RecordingSink();
    const publisher = new EventPublisher(sink, silentLogger, 1_000);
    void publisher.transition(transition("a", TaskState.RUNNING, 10));
    await publisher.flush();
    void publisher.transition(transition("b", TaskState.RUNNING, 11, 1n));
    void publisher.transition(transition("a", TaskState.FAILED, 12));
    void publisher.transition(transition("b", TaskState.FAILED, 13, 2n));
    await publisher.close();
    expect(sent(sink)).toEqual([["a:RUNNING@0"], ["b:RUNNING@0", "a:FAILED@0", "b:FAILED@0"]]);
  });
});
