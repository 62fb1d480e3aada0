import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HubService } from "../core/gen/taskframe/v1/hub_pb.js";
import {
  type ResourceLimitsSchema,
  type RunSpec,
  RunSpecSchema,
  TaskSpecSchema,
} from "../core/gen/taskframe/v1/spec_pb.js";
import { RunState, TaskState } from "../core/states.js";
import { type Admission, DEFAULT_ADMISSION, parsePoolPolicy } from "../hub/admission.js";
import { type HubServer, startHubServer } from "../hub/server.js";
import { type HubClient, runToEnd, startEngine, type TestEngine } from "./helpers/engine.js";

/*
 * RELIABILITY.md test 39: hostile arguments reach the program literally (argv, never a shell);
 * forbidden env, limits above the pool's policy and oversized specs are refused at submit,
 * before anything is queued; the sidecar strips forbidden env it is still handed.
 */

const POLICY = `
pools:
  "*": { max_memory: 1G, max_timeout: 10m, max_cpu: 200%, max_pids: 512, max_disk: 2G }
  loose: { allow_env: [LD_PRELOAD, NODE_OPTIONS] }
`;

const admission: Admission = {
  ...DEFAULT_ADMISSION,
  pools: parsePoolPolicy(POLICY, "policy.yaml"),
  maxTaskSpecBytes: 2 * 2 ** 20,
  maxRequestBytes: 8 * 2 ** 20,
  maxOutputBytes: 2 ** 20,
};

let harness: TestEngine;
let client: HubClient;

beforeAll(async () => {
  harness = await startEngine("pglite", { admission });
  client = harness.client;
});
afterAll(async () => {
  await harness?.[Symbol.asyncDispose]();
});

const execTask = (
  name: string,
  command: string,
  args: string[],
  extra: {
    env?: Record<string, string>;
    pool?: string;
    definedAt?: string;
    timeoutMs?: bigint;
    limits?: MessageInitShape<typeof ResourceLimitsSchema>;
  } = {},
) => {
  const { env = {}, ...rest } = extra;
  return create(TaskSpecSchema, {
    name,
    target: { case: "exec", value: { command, args, cwd: harness.dir, env } },
    timeoutMs: 60_000n,
    limits: { memoryBytes: 2n ** 28n, cpuMillis: 1000 },
    ...rest,
  });
};

const run = (name: string, ...tasks: ReturnType<typeof execTask>[]): RunSpec =>
  create(RunSpecSchema, { name, tasks, source: `${name}.yaml` });

async function rejection(spec: RunSpec): Promise<ConnectError> {
  const error = await client.submitRun({ run: spec }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectError);
  return error as ConnectError;
}

/** `count` arguments of 100 KiB each. */
const chunks = (count: number) => Array.from({ length: count }, () => "y".repeat(100 * 1024));

async function logOf(runId: string, name: string): Promise<string> {
  const { tasks } = await client.listTasks({ runId });
  const task = tasks.find((t) => t.name === name)!;
  let text = "";
  for await (const r of client.getLogs({ task: { taskId: task.id } }))
    text += r.entries.map((e) => Buffer.from(e.data).toString()).join("");
  return text;
}

describe("hostile arguments", () => {
  it("reach the program as argv elements, byte for byte; nothing is run through a shell", async () => {
    const marker = join(harness.dir, "INJECTED");
    const out = join(harness.dir, "argv.json");
    const script = join(harness.dir, "argv.cjs");
    await writeFile(
      script,
      "require('node:fs').writeFileSync(process.argv[2], JSON.stringify(process.argv.slice(3)))\n",
    );
    const hostile = [
      "; touch INJECTED",
      `$(touch ${marker})`,
      `\`touch ${marker}\``,
      "../../../../etc/passwd",
      "a\nb\r\nc",
      `"double" 'single' \\back`,
      "| touch INJECTED &",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal text of an expression
      "${{ params.x }} $HOME * ?",
      "",
      // 1 MiB in all: Linux passes at most 128 KiB per argument (MAX_ARG_STRLEN)
      ...Array.from({ length: 8 }, (_, i) => String(i).repeat(2 ** 17 - 1)),
    ];
    const { run: finished, tasks } = await runToEnd(
      client,
      run("argv", execTask("argv", process.execPath, [script, out, ...hostile])),
    );
    expect(finished.state, (await logOf(finished.id, "argv")).slice(0, 2000)).toBe(RunState.SUCCEEDED);
    expect(tasks.get("argv")?.state).toBe(TaskState.SUCCEEDED);
    expect(JSON.parse(await readFile(out, "utf8"))).toEqual(hostile);
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(join(harness.dir, "INJECTED"))).toBe(false);
  });

  it("one argument above Linux's 128 KiB per argument is refused at submit, not left to fail at execve", async () => {
    const error = await rejection(run("long", execTask("long", "/bin/echo", ["ok", "x".repeat(2 ** 20)])));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(
      /task 'long': exec\.args\[1\] is 1048576 bytes; Linux passes at most 131071 bytes/,
    );
  });

  it("a NUL byte in an argument is refused at submit (execve cannot carry it)", async () => {
    const error = await rejection(run("nul", execTask("nul", "/bin/echo", ["a\0b"])));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(/nul\.yaml: task 'nul': .*NUL byte/);
  });
});

describe("forbidden environment", () => {
  it.each([
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "NODE_OPTIONS",
    "BASH_ENV",
    "JAVA_TOOL_OPTIONS",
    "TASKFRAME_TASK_TOKEN",
  ])("%s in a task's env is refused at submit, naming the file, task and variable", async (name) => {
    const before = (await client.listRuns({})).runs.length;
    const task = execTask("envy", "/bin/true", [], {
      env: { [name]: "/tmp/evil.so" },
      definedAt: "pipelines/envy.yaml:7",
    });
    const error = await rejection(run("envy", task));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toContain(`pipelines/envy.yaml:7: task 'envy': env "${name}"`);
    // nothing was recorded, nothing queued
    expect((await client.listRuns({})).runs.length).toBe(before);
  });

  it("a pool's allow_env admits it; a sidecar without --allow-env strips it and says so in the task's log", async () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, for sh
    const task = execTask("loose", "/bin/sh", ["-c", 'echo "preload=[${LD_PRELOAD-unset}] ok=$OK"'], {
      env: { LD_PRELOAD: "/nonexistent/evil.so", OK: "yes" },
      pool: "loose",
    });
    const { run: finished } = await runToEnd(client, run("loose", task));
    expect(finished.state).toBe(RunState.SUCCEEDED);
    const log = await logOf(finished.id, "loose");
    expect(log).toContain("preload=[unset] ok=yes");
    expect(log).toMatch(/\[taskframe\] env not set: LD_PRELOAD/);
    // TASKFRAME_* never: no policy can allow them
    expect(() => parsePoolPolicy(`pools: { x: { allow_env: [TASKFRAME_HUB] } }`, "p.yaml")).toThrow(
      /p\.yaml: pools\.x\.allow_env\.0: TASKFRAME_\* are Taskframe's own/,
    );
  });
});

describe("limits above the pool's policy", () => {
  it.each([
    [
      "limits.memory_bytes",
      { limits: { memoryBytes: 2n ** 31n, cpuMillis: 1000 } },
      /requested 2\.0 GiB .* allows at most 1\.0 GiB/,
    ],
    [
      "limits.memory_bytes",
      { limits: { cpuMillis: 1000 } },
      /requested no limit, .* allows at most 1\.0 GiB/,
    ],
    [
      "limits.cpu_millis",
      { limits: { memoryBytes: 1n, cpuMillis: 4000 } },
      /requested 400% of a CPU, .* at most 200% of a CPU/,
    ],
    [
      "limits.pids",
      { limits: { memoryBytes: 1n, cpuMillis: 1, pids: 100_000 } },
      /requested 100000, .* at most 512/,
    ],
    [
      "limits.disk_bytes",
      { limits: { memoryBytes: 1n, cpuMillis: 1, diskBytes: 2n ** 40n } },
      /allows at most 2\.0 GiB/,
    ],
    ["timeout_ms", { timeoutMs: 3_600_000n }, /requested 3600000 ms, .* at most 600000 ms/],
    ["timeout_ms", { timeoutMs: 0n }, /requested no limit/],
  ] as const)(
    "%s: refused with InvalidArgument naming task, field, requested and allowed",
    async (field, extra, message) => {
      const error = await rejection(run("greedy", execTask("greedy", "/bin/true", [], extra)));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toContain(`greedy.yaml: task 'greedy': ${field}: `);
      expect(error.rawMessage).toMatch(message);
    },
  );

  it("a task within the policy runs", async () => {
    const { run: finished } = await runToEnd(client, run("modest", execTask("modest", "/bin/true", [])));
    expect(finished.state).toBe(RunState.SUCCEEDED);
  });
});

describe("oversized payloads", () => {
  it("a task spec above the per-task limit: ResourceExhausted naming its size and the limit", async () => {
    const error = await rejection(run("huge", execTask("huge", "/bin/echo", chunks(30))));
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toMatch(
      /task 'huge': its spec is 2\.9 MiB \(\d+ bytes\), above the limit of 2\.0 MiB \(2097152 bytes\) per task/,
    );
  });

  it("a submission above the per-request total: ResourceExhausted", async () => {
    const tasks = Array.from({ length: 6 }, (_, i) => execTask(`t${i}`, "/bin/echo", chunks(15)));
    const error = await rejection(run("many", ...tasks));
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toMatch(
      /many\.yaml: its 6 task specs take (at least )?8\.8 MiB \(\d+ bytes\), above the limit of 8\.0 MiB \(8388608 bytes\) per submission/,
    );
  });

  it("an output above the limit: ResourceExhausted before it is stored", async () => {
    const error = await client
      .putTaskOutput({
        taskId: "01a21b2d-0000-7000-8000-000000000000",
        attempt: 1,
        output: new Uint8Array(2 ** 20 + 1),
      })
      .catch((e: unknown) => e as ConnectError);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.ResourceExhausted);
    expect((error as ConnectError).rawMessage).toMatch(
      /its output is 1\.0 MiB \(1048577 bytes\), above the limit of 1\.0 MiB \(1048576 bytes\)/,
    );
  });

  describe("over HTTP", () => {
    let server: HubServer;
    beforeAll(async () => {
      server = await startHubServer(harness.engine.hub, "127.0.0.1:0", async () => []);
    });
    afterAll(async () => {
      await server?.close(1_000);
    });

    it("a request above --max-request-bytes is refused (ResourceExhausted) by the Connect adapter", async () => {
      const http = createClient(
        HubService,
        createConnectTransport({ baseUrl: `http://${server.address}`, httpVersion: "1.1" }),
      );
      const error = await http
        .putTaskOutput({ taskId: "x", attempt: 1, output: new Uint8Array(9 * 2 ** 20) })
        .catch((e: unknown) => e as ConnectError);
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.ResourceExhausted);
      expect((error as ConnectError).rawMessage).toMatch(/exceeds readMaxBytes|message size|max/i);
    });
  });
});
