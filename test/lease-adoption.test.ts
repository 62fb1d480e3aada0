import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { RunState, TaskState } from "../core/states.js";
import { Worker } from "../sdks/ts/index.js";
import { runSpec, runToEnd, startEngine, type TestEngine } from "./helpers/engine.js";

/*
 * A handler task whose lease runs out while it still runs here (this process
 * was too busy to extend it for a whole ack wait) comes back from the queue:
 * the sidecar must keep the running attempt, not start it a second time.
 */

let harness: TestEngine;
beforeAll(async () => {
  harness = await startEngine("postgres", { ackWaitMs: 300 });
});
afterAll(async () => {
  await harness?.[Symbol.asyncDispose]();
});

describe("a running handler task whose lease ran out", () => {
  it("keeps running once, under the new delivery, and succeeds in its first attempt", async () => {
    let executions = 0;
    const worker = new Worker({
      socket: harness.engine.runnerSocket ?? "",
      concurrency: 4,
      handlers: {
        busy: async () => {
          executions += 1;
          // hold the whole process (the lease keeper included) for more than two ack waits
          const until = Date.now() + 900;
          while (Date.now() < until) {
            // busy on purpose
          }
          await new Promise((resolve) => setTimeout(resolve, 600));
          return "done";
        },
      },
    });
    const done = worker.run();
    try {
      const { run, tasks } = await runToEnd(
        harness.client,
        runSpec("adopt", [
          create(TaskSpecSchema, {
            name: "busy",
            target: { case: "handler", value: { handler: "busy" } },
            retry: { retries: 2 },
          }),
        ]),
      );
      expect(run.state).toBe(RunState.SUCCEEDED);
      expect(tasks.get("busy")).toMatchObject({ state: TaskState.SUCCEEDED, attempt: 1 });
      expect(executions).toBe(1);
    } finally {
      await worker.stop();
      await done;
    }
  });
});
