import { request as httpRequest } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { type Assignment, RunnerService } from "../core/gen/taskframe/v1/runner_pb.js";
import { type RetryPolicySchema, TaskSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { RunState, TaskState } from "../core/states.js";
import { NonRetryableError, RetryAfterError } from "../sdks/ts/index.js";
import { BACKENDS } from "./helpers/backends.js";
import { runSpec, runToEnd, waitForRun } from "./helpers/engine.js";
import { useWorkerBackend } from "./helpers/worker-backend.js";

/*
 * Handler tasks through the Runner protocol, with the reference TypeScript
 * SDK as the worker, on every backend.
 */

function handlerTask(
  name: string,
  handler: string,
  input: unknown = {},
  init: { needs?: string[]; retry?: MessageInitShape<typeof RetryPolicySchema>; timeoutMs?: bigint } = {},
) {
  return create(TaskSpecSchema, {
    name,
    target: {
      case: "handler",
      value: { handler, input: Buffer.from(JSON.stringify(input)), contentType: "application/json" },
    },
    ...init,
  });
}

describe.each(BACKENDS)("handler tasks on %s", (kind) => {
  const harness = useWorkerBackend(kind, { workerName: "test-worker", concurrency: 8 });
  const { startWorker } = harness;

  it("runs a handler and records its result; a task waits until some worker serves its handler", async () => {
    const spec = runSpec("hello-handler", [handlerTask("greet", "greet", { who: "world" })]);
    const { run } = await harness.client.submitRun({ run: spec });
    await sleep(300);
    expect((await harness.client.getRun({ runId: run!.id })).run?.state).toBe(RunState.RUNNING);
    startWorker({
      greet: (ctx) => {
        ctx.log(`greeting ${ctx.json<{ who: string }>().who}`);
        return {
          greeting: `hello ${ctx.json<{ who: string }>().who}`,
          attempt: ctx.attempt,
          traceparent: ctx.traceparent,
        };
      },
    });
    const { run: final, tasks } = await waitForRun(harness.client, run!.id);
    expect(final.state).toBe(RunState.SUCCEEDED);
    const { task } = await harness.client.getTask({ task: { taskId: tasks.get("greet")!.id } });
    expect(task?.outputContentType).toBe("application/json");
    const output = JSON.parse(Buffer.from(task!.output).toString());
    expect(output).toMatchObject({ greeting: "hello world", attempt: 1 });
    // the attempt's trace context, in the run's trace
    expect(output.traceparent).toMatch(new RegExp(`^00-${run!.id.replace(/-/g, "")}-[0-9a-f]{16}-01$`));
    const lines: string[] = [];
    for await (const r of harness.client.getLogs({ task: { taskId: task!.id } })) {
      lines.push(...r.entries.map((e) => Buffer.from(e.data).toString()));
    }
    expect(lines.join("")).toContain("greeting world\n");
  });

  it("maps errors: a plain error is retried, NonRetryableError is not, RetryAfterError sets the wait", async () => {
    const seen: Record<string, number[]> = {};
    const note = (name: string) => {
      seen[name] ??= [];
      seen[name].push(Date.now());
    };
    startWorker({
      flaky: (ctx) => {
        note("flaky");
        if (ctx.attempt === 1) throw new TypeError("first attempt fails");
        return "ok";
      },
      fatal: () => {
        note("fatal");
        throw new NonRetryableError("bad input");
      },
      later: (ctx) => {
        note("later");
        if (ctx.attempt === 1) throw new RetryAfterError(700, "rate limited");
        return "done";
      },
    });
    const retry = { retries: 3, intervalMs: 50n };
    const { run, tasks } = await runToEnd(
      harness.client,
      runSpec("errors", [
        handlerTask("flaky", "flaky", {}, { retry }),
        handlerTask("fatal", "fatal", {}, { retry }),
        handlerTask("later", "later", {}, { retry }),
      ]),
    );
    expect(run.state).toBe(RunState.FAILED);
    expect(tasks.get("flaky")).toMatchObject({ state: TaskState.SUCCEEDED, attempt: 2 });
    expect(tasks.get("fatal")).toMatchObject({
      state: TaskState.FAILED,
      attempt: 1,
      detail: "failed: NonRetryableError: bad input (not retryable)",
    });
    expect(tasks.get("later")).toMatchObject({ state: TaskState.SUCCEEDED, attempt: 2 });
    expect(seen.later![1]! - seen.later![0]!).toBeGreaterThanOrEqual(650);
    const { events } = await harness.client.getAudit({ task: { taskId: tasks.get("flaky")!.id } });
    expect(events.find((e) => e.to === TaskState.RETRYING)?.detail).toMatch(
      /^attempt 1 failed: TypeError: first attempt fails/,
    );
  });

  it("stops a handler at its deadline (TIMED_OUT) and when its run is cancelled (CANCELLED)", async () => {
    const started = new Set<string>();
    startWorker({
      slow: async (ctx) => {
        started.add(ctx.taskName);
        await new Promise((_, reject) =>
          ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)),
        );
      },
    });
    const timed = await runToEnd(
      harness.client,
      runSpec("deadline", [handlerTask("slow", "slow", {}, { timeoutMs: 300n })]),
    );
    expect(timed.tasks.get("slow")?.state).toBe(TaskState.TIMED_OUT);
    const { run } = await harness.client.submitRun({
      run: runSpec("cancelled", [handlerTask("stuck", "slow")]),
    });
    while (!started.has("stuck")) await sleep(20);
    await harness.client.cancelRun({ runId: run!.id, reason: "test" });
    const final = await waitForRun(harness.client, run!.id);
    expect(final.run.state).toBe(RunState.CANCELLED);
    expect(final.tasks.get("stuck")?.state).toBe(TaskState.CANCELLED);
  });

  it("never runs more at once than a worker's concurrency", async () => {
    let running = 0;
    let most = 0;
    startWorker(
      {
        busy: async () => {
          running++;
          most = Math.max(most, running);
          await sleep(100);
          running--;
        },
      },
      2,
    );
    const tasks = Array.from({ length: 10 }, (_, i) => handlerTask(`b${i}`, "busy"));
    const { run } = await runToEnd(harness.client, runSpec("limited", tasks));
    expect(run.state).toBe(RunState.SUCCEEDED);
    expect(most).toBe(2);
  });

  it("carries inputs and outputs larger than a NATS message (5 MB), byte for byte", async () => {
    const big = Buffer.alloc(5 * 2 ** 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 11)) & 0xff;
    startWorker({ mirror: (ctx) => Buffer.from(ctx.input).reverse() });
    const spec = runSpec("large", [
      create(TaskSpecSchema, {
        name: "mirror",
        target: {
          case: "handler",
          value: { handler: "mirror", input: big, contentType: "application/octet-stream" },
        },
      }),
    ]);
    const { run, tasks } = await runToEnd(harness.client, spec);
    expect(run.state).toBe(RunState.SUCCEEDED);
    const { task } = await harness.client.getTask({ task: { taskId: tasks.get("mirror")!.id } });
    expect(Buffer.from(task!.output).equals(Buffer.from(big).reverse())).toBe(true);
    expect(task!.outputContentType).toBe("application/octet-stream");
  });

  it("rejects bad messages from workers without corrupting any task", async () => {
    const runner = createClient(
      RunnerService,
      createConnectTransport({
        baseUrl: "http://sidecar",
        httpVersion: "1.1",
        nodeOptions: { socketPath: harness.runnerSocket },
      }),
    );
    // malformed JSON is refused at the edge
    const malformed = await rawPost(
      harness.runnerSocket,
      "/taskframe.v1.RunnerService/Complete",
      "{not json",
    );
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatch(/invalid_argument/);

    const owner = await runner.register({
      language: "raw",
      handlers: ["held"],
      maxConcurrency: 1,
      name: "owner",
    });
    const stranger = await runner.register({
      language: "raw",
      handlers: ["other"],
      maxConcurrency: 1,
      name: "stranger",
    });
    const stream = runner.assignments({ workerId: owner.workerId })[Symbol.asyncIterator]();
    const { run } = await harness.client.submitRun({
      run: runSpec("bad-messages", [handlerTask("held", "held")]),
    });
    let assignment: Assignment | undefined;
    while (!assignment) assignment = (await stream.next()).value?.assignments[0];
    const identity = {
      taskId: assignment.taskId,
      attempt: assignment.attempt,
      leaseEpoch: assignment.leaseEpoch,
    };
    const output = (text: string) => ({ case: "output" as const, value: Buffer.from(text) });

    const unknown = await runner.complete({
      workerId: owner.workerId,
      completions: [
        { taskId: "01a21b2d-0000-7000-8000-000000000000", attempt: 1, leaseEpoch: 1n, result: output("x") },
      ],
    });
    expect(unknown.receipts[0]).toMatchObject({
      accepted: false,
      reason: expect.stringMatching(/not assigned to this worker/),
    });
    const stolen = await runner.complete({
      workerId: stranger.workerId,
      completions: [{ ...identity, result: output("stolen") }],
    });
    expect(stolen.receipts[0]).toMatchObject({ accepted: false });
    const stale = await runner.complete({
      workerId: owner.workerId,
      completions: [{ ...identity, leaseEpoch: identity.leaseEpoch + 1n, result: output("stale") }],
    });
    expect(stale.receipts[0]?.reason).toMatch(
      /stale completion: this worker holds attempt 1 with lease epoch/,
    );
    const first = await runner.complete({
      workerId: owner.workerId,
      completions: [{ ...identity, result: output("real") }],
    });
    expect(first.receipts[0]).toMatchObject({ accepted: true });
    const duplicate = await runner.complete({
      workerId: owner.workerId,
      completions: [{ ...identity, result: output("again") }],
    });
    expect(duplicate.receipts[0]).toMatchObject({ accepted: false });
    await expect(runner.complete({ workerId: "no-such-worker", completions: [] })).rejects.toThrow(
      /unknown worker/,
    );

    const { run: final, tasks } = await waitForRun(harness.client, run!.id);
    expect(final.state).toBe(RunState.SUCCEEDED);
    const { task } = await harness.client.getTask({ task: { taskId: tasks.get("held")!.id } });
    expect(Buffer.from(task!.output).toString()).toBe("real");
    // the stale-lease completion is in the task's audit trail, marked as rejected
    const { events } = await harness.client.getAudit({ task: { taskId: task!.id } });
    expect(events.some((e) => /^rejected: stale lease/.test(e.detail))).toBe(true);
    await runner.drain({ workerId: owner.workerId });
    await runner.drain({ workerId: stranger.workerId });
    await stream.return?.();
  });
});

/** A raw HTTP POST on the sidecar's socket, to send what no client library would. */
function rawPost(socketPath: string, path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      { socketPath, path, method: "POST", headers: { "content-type": "application/json" } },
      (response) => {
        let text = "";
        response.on("data", (chunk: Buffer) => {
          text += chunk.toString();
        });
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body: text }));
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}
