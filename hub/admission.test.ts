import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { forbiddenEnvReason, permittedTaskEnv } from "../core/forbidden-env.js";
import { WorkItemSchema } from "../core/gen/taskframe/v1/messages_pb.js";
import { TaskSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { taskEnvironment } from "../sidecar/task-env.js";
import { admissionOf, checkAdmission, DEFAULT_ADMISSION, parsePoolPolicy } from "./admission.js";

describe("pool policy files", () => {
  it("reads per-pool maximums and allow_env, with '*' for the rest", () => {
    const pools = parsePoolPolicy(
      `pools:\n  "*": { max_memory: 4G, max_cpu: 150%, max_timeout: 1h }\n  gpu: { max_memory: 64G, max_cpu: 8, max_pids: 100, max_disk: infinity, allow_env: [LD_LIBRARY_PATH] }\n`,
      "policy.yaml",
    );
    expect(pools.get("*")).toEqual({
      maxMemoryBytes: 4n * 2n ** 30n,
      maxCpuMillis: 1500,
      maxTimeoutMs: 3_600_000,
      allowEnv: new Set(),
    });
    expect(pools.get("gpu")).toEqual({
      maxMemoryBytes: 64n * 2n ** 30n,
      maxCpuMillis: 8000,
      maxPids: 100,
      allowEnv: new Set(["LD_LIBRARY_PATH"]),
    });
  });

  it.each([
    [
      "pools: { a: { max_memory: 4GB } }",
      /policy\.yaml: pools\.a\.max_memory: expected a size such as "512M".*\(sizes are powers of 1024 written without "B": "4G"\)/,
    ],
    [
      "pools: { a: { max_cpu: fast } }",
      /policy\.yaml: pools\.a\.max_cpu: expected a CPU share such as "150%"/,
    ],
    ["pools: { a: { max_timeout: soon } }", /policy\.yaml: pools\.a\.max_timeout: /],
    ["pools: { a: { memory: 1G } }", /policy\.yaml: pools\.a: unknown field 'memory'/],
    ["pools: { 'bad pool': {} }", /policy\.yaml: pools\.bad pool: expected a pool name/],
    ["pools: { a: { allow_env: [TASKFRAME_HUB] } }", /TASKFRAME_\* are Taskframe's own/],
    ["pools: [\n", /policy\.yaml:2:1: /],
    ["tasks: {}", /policy\.yaml: \(top\): unknown field 'tasks'|policy\.yaml: pools: /],
  ])("%s is refused naming the file, the field and what was expected", (text, message) => {
    expect(() => parsePoolPolicy(text, "policy.yaml")).toThrow(message);
  });

  it("--max-* of 0 (infinity) means no limit; a missing policy file is named", () => {
    const admission = admissionOf({
      "max-task-spec-bytes": 0n,
      "max-request-bytes": 0n,
      "max-output-bytes": 5n,
    });
    expect(admission.maxTaskSpecBytes).toBe(Number.POSITIVE_INFINITY);
    expect(admission.maxRequestBytes).toBe(0xffffffff);
    expect(admission.maxOutputBytes).toBe(5);
    expect(() =>
      admissionOf({
        "pool-policy": "/nonexistent/p.yaml",
        "max-task-spec-bytes": 1n,
        "max-request-bytes": 1n,
        "max-output-bytes": 1n,
      }),
    ).toThrow(/cannot read the pool policy \/nonexistent\/p\.yaml/);
  });
});

describe("spec sizes", () => {
  it("needs, after and a handler's input are not counted per task (they travel apart), only in the total", () => {
    const needs = Array.from({ length: 200_000 }, (_, i) => `task-number-${i}`);
    const sink = create(TaskSpecSchema, {
      name: "sink",
      needs,
      target: { case: "exec", value: { command: "/bin/true" } },
    });
    const handler = create(TaskSpecSchema, {
      name: "h",
      target: { case: "handler", value: { handler: "h", input: new Uint8Array(5 * 2 ** 20) } },
    });
    expect(() => checkAdmission([sink, handler], DEFAULT_ADMISSION)).not.toThrow();
    expect(sink.needs).toBe(needs);
    expect(() =>
      checkAdmission([sink, handler], { ...DEFAULT_ADMISSION, maxRequestBytes: 6 * 2 ** 20 }),
    ).toThrow(/its 2 task specs take .* above the limit of 6\.0 MiB/);
    const big = create(TaskSpecSchema, {
      name: "big",
      target: {
        case: "exec",
        value: {
          command: "/bin/true",
          env: { DATA: "x".repeat(100_000) },
          args: Array(12).fill("y".repeat(100_000)),
        },
      },
    });
    expect(() => checkAdmission([big], DEFAULT_ADMISSION)).toThrow(
      /task 'big': its spec is 1\.2 MiB \(\d+ bytes\), above the limit of 1\.0 MiB/,
    );
  });
});

describe("forbidden environment", () => {
  it("names loader, interpreter and Taskframe variables; allows the rest and what a pool allows", () => {
    for (const name of [
      "LD_PRELOAD",
      "LD_LIBRARY_PATH",
      "LD_AUDIT",
      "DYLD_INSERT_LIBRARIES",
      "NODE_OPTIONS",
      "PYTHONSTARTUP",
      "PERL5OPT",
      "BASH_ENV",
      "ENV",
      "BASH_FUNC_x%%",
      "JAVA_TOOL_OPTIONS",
      "_JAVA_OPTIONS",
      "GCONV_PATH",
      "TASKFRAME_HUB",
    ])
      expect(forbiddenEnvReason(name), name).toBeDefined();
    for (const name of ["PATH", "HOME", "PYTHONPATH", "NODE_PATH", "CLASSPATH", "LANG", "MY_LD_PRELOAD"])
      expect(forbiddenEnvReason(name), name).toBeUndefined();
    expect(forbiddenEnvReason("LD_PRELOAD", new Set(["LD_PRELOAD"]))).toBeUndefined();
    expect(forbiddenEnvReason("TASKFRAME_HUB", new Set(["TASKFRAME_HUB"]))).toBeDefined();
    expect(forbiddenEnvReason("A=B")).toBeDefined();
  });

  it("the sidecar strips them from a task's environment (defence in depth), unless --allow-env lets them through", () => {
    const item = create(WorkItemSchema, {
      taskId: "01a21b2d-0000-7000-8000-000000000000",
      runId: "r",
      attempt: 1,
      spec: {
        name: "t",
        target: {
          case: "exec",
          value: {
            command: "/bin/true",
            env: {
              LD_PRELOAD: "/evil.so",
              NODE_OPTIONS: "--require /evil.js",
              TASKFRAME_TASK_ID: "forged",
              OK: "1",
            },
          },
        },
      },
    });
    const { env } = taskEnvironment(item, "h", 1, { base: {} });
    expect(env.LD_PRELOAD).toBeUndefined();
    expect(env.NODE_OPTIONS).toBeUndefined();
    expect(env.TASKFRAME_TASK_ID).toBe("01a21b2d-0000-7000-8000-000000000000");
    expect(env.OK).toBe("1");
    expect(
      taskEnvironment(item, "h", 1, { base: {}, allowEnv: new Set(["LD_PRELOAD"]) }).env.LD_PRELOAD,
    ).toBe("/evil.so");
    expect(permittedTaskEnv({ LD_PRELOAD: "x", A: "b" }).stripped).toEqual(["LD_PRELOAD"]);
  });
});
