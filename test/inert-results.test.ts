import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { taskJson } from "../cli/render/json.js";
import { terminalSafe, terminalSafeLine } from "../cli/render/terminal-safe.js";
import { TaskSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { RunState, TaskState } from "../core/states.js";
import { NonRetryableError, Output, Worker } from "../sdks/ts/index.js";
import { runSpec, runToEnd, startEngine, type TestEngine } from "./helpers/engine.js";

/*
 * RELIABILITY.md test 40 (Celery CVE-2021-23727, Airflow CVE-2026-25917 / CVE-2024-56373):
 * what a worker returns, and the errors it reports, are stored and returned as data: bytes for
 * bytes, no class looked up or instantiated, no prototype of the hub process changed, shown
 * escaped by the CLI on a terminal (the dashboard renders them as React text, never as HTML).
 */

/** A pickle of `os.system("touch /tmp/pwned")` (protocol 0), as a Python worker might send it. */
const PICKLE = Buffer.from("cos\nsystem\n(S'touch /tmp/taskframe-pwned'\ntR.", "latin1");

const HOSTILE_JSON = String.raw`{
  "__proto__": { "polluted": "yes", "isAdmin": true },
  "constructor": { "prototype": { "polluted": "yes" } },
  "py/object": "subprocess.Popen",
  "__class__": "os.system",
  "$type": "System.Diagnostics.Process, System",
  "@class": "java.lang.ProcessBuilder",
  "__reduce__": ["os.system", ["touch /tmp/taskframe-pwned"]],
  "pickle": "${PICKLE.toString("base64")}",
  "html": "<script>alert(document.cookie)</script><img src=x onerror=alert(1)>",
  "terminal": "\u001b]52;c;cGF5bG9hZA==\u0007\u001b[2J"
}`;

const SCRIPT = "<script>alert('x')</script><img src=x onerror=alert(1)>";

let harness: TestEngine;
let worker: Worker;
let running: Promise<void>;

beforeAll(async () => {
  harness = await startEngine("pglite");
  worker = new Worker({
    socket: harness.engine.runnerSocket!,
    name: "hostile",
    handlers: {
      json: () => new Output(Buffer.from(HOSTILE_JSON), "application/json"),
      pickle: () => new Output(PICKLE, "application/python-pickle"),
      fail: () => {
        const error = new NonRetryableError(`${SCRIPT} \u001b[31mred\u001b[0m __import__('os').system('id')`);
        error.name = "subprocess.Popen";
        throw error;
      },
    },
  });
  running = worker.run();
});
afterAll(async () => {
  await worker?.stop();
  await running?.catch(() => {});
  await harness?.[Symbol.asyncDispose]();
});

const handlerTask = (name: string, handler: string) =>
  create(TaskSpecSchema, {
    name,
    target: {
      case: "handler",
      value: { handler, input: Buffer.from("{}"), contentType: "application/json" },
    },
  });

describe("results and errors are inert data", () => {
  it("a JSON output with __proto__, constructor.prototype, class names and a pickle is stored and returned byte for byte; nothing is polluted", async () => {
    const { run, tasks } = await runToEnd(
      harness.client,
      runSpec("inert-json", [handlerTask("json", "json"), handlerTask("pickle", "pickle")]),
    );
    expect(run.state).toBe(RunState.SUCCEEDED);
    const json = (await harness.client.getTask({ task: { taskId: tasks.get("json")!.id } })).task!;
    expect(Buffer.from(json.output).toString()).toBe(HOSTILE_JSON);
    expect(json.outputContentType).toBe("application/json");
    const pickle = (await harness.client.getTask({ task: { taskId: tasks.get("pickle")!.id } })).task!;
    expect(Buffer.from(pickle.output).equals(PICKLE)).toBe(true);
    expect(pickle.outputContentType).toBe("application/python-pickle");
    // this process is the hub: its prototypes are as they were
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    expect(Object.keys(Object.prototype)).toEqual([]);
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(
      Object.getOwnPropertyNames(Object.getPrototypeOf(Object.create(Object.prototype))).sort(),
    );
    // --json output is data too: a string, not a parsed object
    const printed = JSON.stringify(taskJson(json));
    expect(JSON.parse(printed).polluted).toBeUndefined();
  });

  it("an error with a class name, HTML and escape sequences is recorded as text, and shown escaped on a terminal", async () => {
    const { run, tasks } = await runToEnd(
      harness.client,
      runSpec("inert-error", [handlerTask("fail", "fail")]),
    );
    expect(run.state).toBe(RunState.FAILED);
    const task = tasks.get("fail")!;
    expect(task.state).toBe(TaskState.FAILED);
    expect(task.detail).toContain(SCRIPT);
    expect(task.detail).toContain("subprocess.Popen");
    expect(task.detail).toContain("\u001b[31m");
    const shown = terminalSafe(task.detail);
    expect(shown.includes("\u001b")).toBe(false);
    expect(shown).toContain("\\x1b[31mred\\x1b[0m");
    expect(shown).toContain(SCRIPT);
    expect(terminalSafeLine("a\nb\u0007\u202e")).toBe("a\\nb\\x07\\u{202e}");
    expect(Object.keys(Object.prototype)).toEqual([]);
  });
});
