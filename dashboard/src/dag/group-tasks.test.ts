import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { type Task, TaskSchema } from "../../../core/gen/taskframe/v1/hub_pb.js";
import { TaskState } from "../../../core/states.js";
import { groupRun, NODE_LIMIT, recount } from "./group-tasks.js";

const task = (name: string, needs: string[] = [], state = TaskState.CREATED): Task =>
  create(TaskSchema, { id: `id-${name}`, name, needs, state });

describe("grouping a run's graph", () => {
  it("draws a small run task by task", () => {
    const graph = groupRun([task("a"), task("b-1", ["a"]), task("b-2", ["a"])]);
    expect(graph.groups.size).toBe(3);
    expect(graph.edges).toEqual([
      ["id-a", "id-b-1"],
      ["id-a", "id-b-2"],
    ]);
  });

  it("draws a fan-out of 5,000 as one node, with one edge each way", () => {
    const work = Array.from({ length: 5_000 }, (_, i) => task(`work-${i}`, ["gate"]));
    const graph = groupRun([
      task("gate"),
      ...work,
      task(
        "report",
        work.map((t) => t.name),
      ),
    ]);
    expect([...graph.groups.keys()]).toEqual(["gate", "work-#", "report"]);
    expect(graph.groups.get("work-#")?.taskIds).toHaveLength(5_000);
    expect(graph.edges).toEqual([
      ["gate", "work-#"],
      ["work-#", "report"],
    ]);
  });

  it("merges by name prefix when numbered families alone would still draw too many nodes", () => {
    // names told apart by letters, not numbers: 5,000 families of one
    const letters = (n: number): string =>
      (n < 26 ? "" : letters(Math.floor(n / 26) - 1)) + String.fromCharCode(97 + (n % 26));
    const tasks = Array.from({ length: 5_000 }, (_, i) => task(`shard-${letters(i)}`));
    const families = new Set(tasks.map((t) => t.name.replace(/\d+/g, "#")));
    expect(families.size).toBeGreaterThan(NODE_LIMIT);
    expect([...groupRun(tasks).groups.keys()]).toEqual(["shard-*"]);
  });

  it("recounts states in place as tasks change", () => {
    const tasks = Array.from({ length: 300 }, (_, i) => task(`w-${i}`));
    const graph = groupRun(tasks);
    const byId = new Map(tasks.map((t) => [t.id, t]));
    byId.set("id-w-7", { ...tasks[7]!, state: TaskState.FAILED });
    recount(graph, byId);
    expect(Object.fromEntries(graph.groups.get("w-#")!.counts)).toEqual({
      [TaskState.CREATED]: 299,
      [TaskState.FAILED]: 1,
    });
  });
});
