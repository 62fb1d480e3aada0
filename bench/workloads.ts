import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import type { HubService } from "../core/gen/taskframe/v1/hub_pb.js";
import { type RunSpec, RunSpecSchema, TaskSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { RunState } from "../core/states.js";

export type Shape = "independent" | "fanout";

/** `count` tasks running /bin/true: independent, or between a root and a sink (fan-out, fan-in). */
export function trueTasks(count: number, shape: Shape, cwd: string): RunSpec {
  const exec = (name: string, needs: string[]) =>
    create(TaskSpecSchema, { name, needs, target: { case: "exec", value: { command: "/bin/true", cwd } } });
  if (shape === "independent") {
    return create(RunSpecSchema, {
      name: "bench",
      tasks: Array.from({ length: count }, (_, i) => exec(`t${i}`, [])),
    });
  }
  const middle = Array.from({ length: count }, (_, i) => exec(`t${i}`, ["root"]));
  return create(RunSpecSchema, {
    name: "bench",
    tasks: [
      exec("root", []),
      ...middle,
      exec(
        "sink",
        middle.map((t) => t.name),
      ),
    ],
  });
}

export interface Timed {
  tasks: number;
  submitSeconds: number;
  totalSeconds: number;
  tasksPerSecond: number;
  state: string;
}

/** Submits `spec` and follows it to the end through the hub API; times both. */
export async function submitAndWait(client: Client<typeof HubService>, spec: RunSpec): Promise<Timed> {
  const started = performance.now();
  const { run } = await client.submitRun({ run: spec });
  const submitted = performance.now();
  for await (const _ of client.watchRun({ runId: run!.id })) {
    // the stream ends when the run is finished
  }
  const totalSeconds = (performance.now() - started) / 1000;
  const final = (await client.getRun({ runId: run!.id })).run!;
  return {
    tasks: spec.tasks.length,
    submitSeconds: (submitted - started) / 1000,
    totalSeconds,
    tasksPerSecond: spec.tasks.length / totalSeconds,
    state: RunState[final.state] ?? String(final.state),
  };
}
