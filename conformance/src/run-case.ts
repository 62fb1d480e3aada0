import { create, toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import type { HubClient } from "../../cli/hub-client.js";
import type { Expectation, TestCase, TestTask } from "../../core/gen/taskframe/conformance/v1/suite_pb.js";
import type { Task } from "../../core/gen/taskframe/v1/hub_pb.js";
import { RunSpecSchema, type TaskSpec, TaskSpecSchema } from "../../core/gen/taskframe/v1/spec_pb.js";
import { TaskState } from "../../core/states.js";
import type { AdapterProcess } from "./adapter-process.js";

export interface CaseOutcome {
  /** Human-readable differences from the expectation; empty: passed. */
  problems: string[];
  ms: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const POLL_MS = 25;

/** Runs one case as one run, applies its action, and compares every task with its expectation. */
export async function runCase(
  client: HubClient,
  adapter: AdapterProcess,
  name: string,
  testCase: TestCase,
): Promise<CaseOutcome> {
  const started = performance.now();
  const problems: string[] = [];
  await adapter.ensureConcurrency(testCase.concurrency || 4);
  const inputs = new Map(testCase.tasks.map((t) => [t.name, inputOf(t)] as const));
  const { run } = await client.submitRun({
    run: create(RunSpecSchema, {
      name: `conformance ${name}`,
      tasks: testCase.tasks.map((t) => taskSpec(t, inputs.get(t.name)!)),
    }),
  });
  const runId = run!.id;
  const deadline = Date.now() + (testCase.timeoutMs || DEFAULT_TIMEOUT_MS);
  const action = testCase.action;
  let acted = false;
  let maxRunning = 0;
  for (;;) {
    const listed = await client.listTasks({ runId });
    const running = listed.tasks.filter((t) => t.state === TaskState.RUNNING).length;
    maxRunning = Math.max(maxRunning, running);
    if (listed.run?.finishedAtUnixMs) break;
    if (!acted && action?.action.case && running >= action.action.value) {
      acted = true;
      if (action.action.case === "cancelRunWhenRunning")
        await client.cancelRun({ runId, reason: "conformance" });
      if (action.action.case === "killAdapterWhenRunning") await adapter.killAndRestart();
      if (action.action.case === "stopAdapterWhenRunning") {
        const code = await adapter.stop();
        if (code !== 0) problems.push(`the adapter exited with ${code ?? "a signal"} after SIGTERM, not 0`);
        await adapter.start();
      }
    }
    if (Date.now() > deadline) {
      problems.push(`the run did not end within ${testCase.timeoutMs || DEFAULT_TIMEOUT_MS} ms`);
      await client.cancelRun({ runId, reason: "conformance case timed out" }).catch(() => {});
      return { problems, ms: performance.now() - started };
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  if (action?.action.case && !acted)
    problems.push(`the run ended before its action (${action.action.case}) could apply`);
  const { tasks } = await client.listTasks({ runId });
  const byName = new Map(tasks.map((t) => [t.name, t]));
  if (action?.maxRunningAtOnce) {
    const overlap = maxOverlap(tasks);
    if (overlap > action.maxRunningAtOnce) {
      problems.push(`${overlap} tasks ran at once; the worker's concurrency is ${action.maxRunningAtOnce}`);
    }
  }
  for (const task of testCase.tasks) {
    const actual = byName.get(task.name);
    if (!actual) {
      problems.push(`${task.name}: not in the run`);
      continue;
    }
    if (task.expect) {
      for (const problem of await compare(client, actual, task.expect, inputs.get(task.name)!, byName)) {
        problems.push(`${task.name}: ${problem}`);
      }
    }
  }
  return { problems, ms: performance.now() - started };
}

function taskSpec(task: TestTask, input: { bytes: Uint8Array; contentType: string }): TaskSpec {
  return create(TaskSpecSchema, {
    name: task.name,
    target: {
      case: "handler",
      value: {
        handler: task.handler || "conformance.script",
        input: input.bytes,
        contentType: input.contentType,
      },
    },
    needs: task.needs,
    retry: { retries: task.retries, intervalMs: task.retryIntervalMs },
    timeoutMs: task.timeoutMs,
  });
}

function inputOf(task: TestTask): { bytes: Uint8Array; contentType: string } {
  if (task.script) {
    const json = JSON.stringify(toJson(ValueSchema, task.script));
    return { bytes: Buffer.from(json, "utf8"), contentType: task.contentType || "application/json" };
  }
  if (task.inputRandomBytes > 0)
    return { bytes: pseudoRandomBytes(task.inputRandomBytes), contentType: task.contentType };
  return { bytes: Buffer.from(task.inputText, "utf8"), contentType: task.contentType };
}

/** Every byte value, in an order that is the same on every run. */
function pseudoRandomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let state = 0x9e3779b9;
  for (let i = 0; i < size; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

async function compare(
  client: HubClient,
  actual: Task,
  expect: Expectation,
  input: { bytes: Uint8Array },
  byName: ReadonlyMap<string, Task>,
): Promise<string[]> {
  const problems: string[] = [];
  const stateName = (s: number) => TaskState[s] ?? String(s);
  if (expect.state && actual.state !== expect.state) {
    problems.push(
      `ended ${stateName(actual.state)} (${actual.detail || "no detail"}), expected ${stateName(expect.state)}`,
    );
  }
  if (expect.attempts && actual.attempt !== expect.attempts) {
    problems.push(`took ${actual.attempt} attempts, expected ${expect.attempts}`);
  }
  if (expect.detailContains && !actual.detail.includes(expect.detailContains)) {
    problems.push(`detail '${actual.detail}' does not contain '${expect.detailContains}'`);
  }
  const needsOutput =
    expect.outputJson !== undefined ||
    expect.outputText !== undefined ||
    expect.outputIsInput ||
    expect.outputContentType !== "";
  if (needsOutput) {
    const { task } = await client.getTask({ task: { taskId: actual.id } });
    const output = Buffer.from(task?.output ?? new Uint8Array());
    if (expect.outputContentType && task?.outputContentType !== expect.outputContentType) {
      problems.push(
        `output content type '${task?.outputContentType}', expected '${expect.outputContentType}'`,
      );
    }
    if (expect.outputText !== undefined && output.toString("utf8") !== expect.outputText) {
      problems.push(
        `output ${JSON.stringify(output.toString("utf8").slice(0, 200))}, expected ${JSON.stringify(expect.outputText)}`,
      );
    }
    if (expect.outputIsInput && !output.equals(Buffer.from(input.bytes))) {
      problems.push(`output (${output.length} bytes) differs from the input (${input.bytes.length} bytes)`);
    }
    if (expect.outputJson !== undefined) {
      const want = toJson(ValueSchema, expect.outputJson);
      let got: unknown;
      try {
        got = JSON.parse(output.toString("utf8"));
      } catch {
        got = `<not JSON: ${output.toString("utf8").slice(0, 100)}>`;
      }
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        problems.push(`output ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
      }
    }
  }
  if (expect.logsContain.length > 0) {
    let logs = "";
    for await (const r of client.getLogs({ task: { taskId: actual.id } })) {
      logs += r.entries.map((e) => Buffer.from(e.data).toString("utf8")).join("");
    }
    for (const text of expect.logsContain)
      if (!logs.includes(text)) problems.push(`logs do not contain '${text}'`);
  }
  if (expect.auditContains.length > 0 || expect.minRetryGapMs > 0) {
    const { events } = await client.getAudit({ task: { taskId: actual.id } });
    for (const text of expect.auditContains) {
      if (!events.some((e) => e.detail.includes(text))) problems.push(`no audit event mentions '${text}'`);
    }
    if (expect.minRetryGapMs > 0) {
      const retrying = events.find((e) => e.to === TaskState.RETRYING);
      const second = events.find((e) => e.to === TaskState.RUNNING && e.attempt === 2);
      const gap = retrying && second ? Number(second.atUnixMs - retrying.atUnixMs) : undefined;
      if (gap === undefined || gap < expect.minRetryGapMs) {
        problems.push(
          `attempt 2 started ${gap ?? "?"} ms after attempt 1 failed, expected at least ${expect.minRetryGapMs}`,
        );
      }
    }
  }
  const wanted = Object.entries(expect.descendants);
  if (wanted.length > 0) {
    const prefix = `${actual.name}/`;
    const spawned = [...byName.values()]
      .filter((t) => t.name.startsWith(prefix))
      .map((t) => t.name)
      .sort();
    const expectedNames = wanted.map(([n]) => n).sort();
    if (JSON.stringify(spawned) !== JSON.stringify(expectedNames)) {
      problems.push(`spawned [${spawned.join(", ")}], expected exactly [${expectedNames.join(", ")}]`);
    }
    for (const [name, state] of wanted) {
      const child = byName.get(name);
      if (child && child.state !== state) {
        problems.push(
          `${name} ended ${stateName(child.state)} (${child.detail}), expected ${stateName(state)}`,
        );
      }
    }
  }
  return problems;
}

/** The most tasks whose [start, finish) intervals overlap. */
function maxOverlap(tasks: readonly Task[]): number {
  const points = tasks
    .filter((t) => t.startedAtUnixMs > 0n && t.finishedAtUnixMs > 0n)
    .flatMap((t) => [
      [Number(t.startedAtUnixMs), 1],
      [Number(t.finishedAtUnixMs), -1],
    ])
    .sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let current = 0;
  let most = 0;
  for (const [, delta] of points) {
    current += delta!;
    most = Math.max(most, current);
  }
  return most;
}
