import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { type RunSpec, RunSpecSchema } from "../gen/taskframe/v1/spec_pb.js";
import { formatGraph } from "./graph-format.js";
import { runGraph } from "./run-graph.js";

const run = (tasks: [name: string, needs?: string[], after?: string[]][]): RunSpec =>
  create(RunSpecSchema, {
    name: "etl",
    tasks: tasks.map(([name, needs = [], after = []]) => ({ name, needs, after })),
  });

const diamond = run([
  ["extract"],
  ["load-a", ["extract"]],
  ["load-b", ["extract"], ["load-a"]],
  ["report", ["load-a", "load-b"]],
]);
const cyclic = run([["a", ["b"]], ["b", [], ["c"]], ["c", ["a"]], ["d", ["c"]], ["e"], ["self", ["self"]]]);

describe("runGraph", () => {
  it("lays tasks out in topological levels with their edges", () => {
    const graph = runGraph(diamond);
    expect(graph.levels).toEqual([["extract"], ["load-a"], ["load-b"], ["report"]]);
    expect(graph.edges).toEqual([
      { from: "extract", to: "load-a", kind: "needs", cyclic: false },
      { from: "extract", to: "load-b", kind: "needs", cyclic: false },
      { from: "load-a", to: "load-b", kind: "after", cyclic: false },
      { from: "load-a", to: "report", kind: "needs", cyclic: false },
      { from: "load-b", to: "report", kind: "needs", cyclic: false },
    ]);
    expect(graph.cycles).toEqual([]);
  });

  it("marks the tasks and edges of cycles, and what waits on them, instead of failing", () => {
    const graph = runGraph(cyclic);
    expect(graph.levels).toEqual([["e"]]);
    expect(graph.tasks.filter((task) => task.cyclic).map((task) => task.name)).toEqual([
      "a",
      "b",
      "c",
      "self",
    ]);
    expect(graph.tasks.find((task) => task.name === "d")).toMatchObject({ level: undefined, cyclic: false });
    expect(graph.cycles).toEqual([
      ["a", "b", "c", "a"],
      ["self", "self"],
    ]);
    expect(graph.edges.filter((edge) => edge.cyclic).map((edge) => `${edge.from}>${edge.to}`)).toEqual([
      "b>a",
      "c>b",
      "a>c",
      "self>self",
    ]);
  });

  it("handles a long chain without recursion", () => {
    const chain = run(Array.from({ length: 50_000 }, (_, i) => [`t${i}`, i === 0 ? [] : [`t${i - 1}`]]));
    expect(runGraph(chain).levels).toHaveLength(50_000);
  });
});

describe("formatGraph", () => {
  it("prints levels, edges and cycles as text", () => {
    expect(formatGraph(runGraph(cyclic), "text")).toBe(
      [
        "etl: 6 tasks in 1 level, 2 dependency cycles",
        "level 1",
        "  e",
        "never ready (on a dependency cycle, or waiting for one)",
        "  a     needs b; <- on a cycle",
        "  b     after c; <- on a cycle",
        "  c     needs a; <- on a cycle",
        "  d     needs c",
        "  self  needs self; <- on a cycle",
        "edges (from what goes first to what waits for it)",
        "  b -> a  <- cycle",
        "  c ..> b  (after: order only)  <- cycle",
        "  a -> c  <- cycle",
        "  c -> d",
        "  self -> self  <- cycle",
        "cycle (each waits for the next): a -> b -> c -> a",
        "cycle (each waits for the next): self -> self",
        "",
      ].join("\n"),
    );
  });

  it("prints Graphviz with ordering-only edges dashed and cycles red", () => {
    const dot = formatGraph(runGraph(run([["a"], ["b", ["a"]], ["c", [], ["b"]], ['we"ird', ["c"]]])), "dot");
    expect(dot).toBe(
      [
        'digraph "etl" {',
        "  rankdir=LR;",
        "  node [shape=box];",
        '  "a";',
        '  "b";',
        '  "c";',
        '  "we\\"ird";',
        '  "a" -> "b";',
        '  "b" -> "c" [style=dashed];',
        '  "c" -> "we\\"ird";',
        "}",
        "",
      ].join("\n"),
    );
    expect(formatGraph(runGraph(cyclic), "dot")).toContain('"c" -> "b" [style=dashed, color=red];');
  });

  it("prints a Mermaid flowchart", () => {
    expect(formatGraph(runGraph(run([["a"], ["b.x", ["a"]], ["c", [], ["b.x"]]])), "mermaid")).toBe(
      ["flowchart TD", '  t0["a"]', '  t1["b.x"]', '  t2["c"]', "  t0 --> t1", "  t1 -.-> t2", ""].join("\n"),
    );
    const cycle = formatGraph(
      runGraph(
        run([
          ["a", ["b"]],
          ["b", ["a"]],
        ]),
      ),
      "mermaid",
    );
    expect(cycle).toContain("  class t0,t1 cycle");
    expect(cycle).toContain("  linkStyle 0,1 stroke:#d00,stroke-width:2px");
  });
});
