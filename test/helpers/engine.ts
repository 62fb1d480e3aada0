import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import type { HubService, Run, Task } from "../../core/gen/taskframe/v1/hub_pb.js";
import {
  type RetryPolicySchema,
  type RunSpec,
  RunSpecSchema,
  TaskSpecSchema,
} from "../../core/gen/taskframe/v1/spec_pb.js";
import { EmbeddedEngine, type EmbeddedOptions } from "../../embedded/engine.js";
import { createTestDatabase, type DATABASE_KINDS, type TestDatabase } from "./databases.js";

export type HubClient = Client<typeof HubService>;

export interface TestEngine extends AsyncDisposable {
  engine: EmbeddedEngine;
  client: HubClient;
  dir: string;
}

/**
 * An embedded engine (hub + sidecar in process) on a fresh database of the
 * given kind; unjailed unless `options.jail` says otherwise, as startCluster.
 */
export async function startEngine(
  kind: (typeof DATABASE_KINDS)[number],
  options: Partial<EmbeddedOptions> = {},
): Promise<TestEngine> {
  const dir = await mkdtemp(join(tmpdir(), "taskframe-engine-"));
  let database: TestDatabase | undefined;
  try {
    database = await createTestDatabase(kind);
    const engine = await EmbeddedEngine.open({
      dataDir: join(dir, "data"),
      database: database.target,
      killGraceMs: 300,
      jail: { profile: "none" },
      ...options,
    });
    const db = database;
    return {
      engine,
      client: engine.client(),
      dir,
      async [Symbol.asyncDispose]() {
        await engine.close();
        await db[Symbol.asyncDispose]();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await database?.[Symbol.asyncDispose]();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

interface TaskInit {
  needs?: string[];
  after?: string[];
  /** Scripts run with `sh -c` before the command. */
  checks?: Record<string, string>;
  /** A script run with `sh -c` that decides whether the task runs. */
  condition?: string;
  timeoutMs?: bigint;
  retry?: MessageInitShape<typeof RetryPolicySchema>;
}

/** An exec task running `sh -c script`. */
export function shellTask(name: string, script: string, init: TaskInit = {}) {
  const { checks, condition, ...rest } = init;
  const sh = (checkName: string, body: string) => ({
    name: checkName,
    command: "/bin/sh",
    args: ["-c", body],
  });
  return create(TaskSpecSchema, {
    name,
    target: { case: "exec", value: { command: "/bin/sh", args: ["-c", script], cwd: tmpdir() } },
    ...rest,
    checks: Object.entries(checks ?? {}).map(([checkName, body]) => sh(checkName, body)),
    ...(condition ? { condition: sh("condition", condition) } : {}),
  });
}

export const runSpec = (name: string, tasks: ReturnType<typeof shellTask>[]): RunSpec =>
  create(RunSpecSchema, { name, tasks });

export interface FinishedRun {
  run: Run;
  tasks: Map<string, Task>;
}

/** Submits a run and waits (through WatchRun) until it is finished. */
export async function runToEnd(client: HubClient, spec: RunSpec): Promise<FinishedRun> {
  const { run } = await client.submitRun({ run: spec });
  return waitForRun(client, run!.id);
}

export async function waitForRun(client: HubClient, runId: string): Promise<FinishedRun> {
  for await (const _ of client.watchRun({ runId })) {
    // the stream ends when the run is finished
  }
  const { run, tasks } = await client.listTasks({ runId });
  return { run: run!, tasks: new Map(tasks.map((t) => [t.name, t])) };
}

export const startedAt = (task: Task | undefined): number => Number(task?.startedAtUnixMs ?? 0);
export const finishedAt = (task: Task | undefined): number => Number(task?.finishedAtUnixMs ?? 0);
