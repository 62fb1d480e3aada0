import type { GraphTask, RunGraph } from "./run-graph.js";

export const GRAPH_FORMATS = ["text", "dot", "mermaid"] as const;
export type GraphFormat = (typeof GRAPH_FORMATS)[number];

export function formatGraph(graph: RunGraph, format: GraphFormat): string {
  switch (format) {
    case "text":
      return textGraph(graph);
    case "dot":
      return dotGraph(graph);
    case "mermaid":
      return mermaidGraph(graph);
  }
}

const plural = (count: number, word: string): string => `${count} ${word}${count === 1 ? "" : "s"}`;

/** Levels of tasks with what each waits for, then the edges, then the cycles if any. */
function textGraph(graph: RunGraph): string {
  const width = Math.min(
    40,
    graph.tasks.reduce((widest, task) => Math.max(widest, task.name.length), 4),
  );
  const line = (task: GraphTask): string => {
    const parts: string[] = [];
    if (task.needs.length > 0) parts.push(`needs ${task.needs.join(", ")}`);
    const after = task.after.filter((name) => !task.needs.includes(name));
    if (after.length > 0) parts.push(`after ${after.join(", ")}`);
    if (task.cyclic) parts.push("<- on a cycle");
    return `  ${task.name.padEnd(width)}  ${parts.join("; ")}`.trimEnd();
  };
  const byName = new Map(graph.tasks.map((task) => [task.name, task]));
  const out = [
    `${graph.name}: ${plural(graph.tasks.length, "task")} in ${plural(graph.levels.length, "level")}` +
      (graph.cycles.length > 0 ? `, ${plural(graph.cycles.length, "dependency cycle")}` : ""),
  ];
  graph.levels.forEach((names, level) => {
    out.push(`level ${level + 1}`);
    for (const name of names) out.push(line(byName.get(name)!));
  });
  const stuck = graph.tasks.filter((task) => task.level === undefined);
  if (stuck.length > 0) {
    out.push("never ready (on a dependency cycle, or waiting for one)");
    for (const task of stuck) out.push(line(task));
  }
  if (graph.edges.length > 0) {
    out.push("edges (from what goes first to what waits for it)");
    for (const edge of graph.edges) {
      const arrow = edge.kind === "needs" ? "->" : "..>";
      out.push(
        `  ${edge.from} ${arrow} ${edge.to}${edge.kind === "after" ? "  (after: order only)" : ""}${edge.cyclic ? "  <- cycle" : ""}`,
      );
    }
  }
  for (const cycle of graph.cycles) out.push(`cycle (each waits for the next): ${cycle.join(" -> ")}`);
  return `${out.join("\n")}\n`;
}

const dotId = (name: string): string => `"${name.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;

/** Graphviz: edges from a task to those that wait for it; ordering-only edges dashed, cycles red. */
function dotGraph(graph: RunGraph): string {
  const out = [`digraph ${dotId(graph.name)} {`, "  rankdir=LR;", "  node [shape=box];"];
  for (const task of graph.tasks) out.push(`  ${dotId(task.name)}${task.cyclic ? " [color=red]" : ""};`);
  for (const edge of graph.edges) {
    const style: string[] = [];
    if (edge.kind === "after") style.push("style=dashed");
    if (edge.cyclic) style.push("color=red");
    out.push(
      `  ${dotId(edge.from)} -> ${dotId(edge.to)}${style.length > 0 ? ` [${style.join(", ")}]` : ""};`,
    );
  }
  out.push("}");
  return `${out.join("\n")}\n`;
}

/** Mermaid `flowchart TD`; nodes get short ids, since task names may hold characters Mermaid reads. */
function mermaidGraph(graph: RunGraph): string {
  const ids = new Map(graph.tasks.map((task, index) => [task.name, `t${index}`]));
  const label = (name: string): string => `"${name.replace(/"/g, "#quot;")}"`;
  const out = ["flowchart TD"];
  for (const task of graph.tasks) out.push(`  ${ids.get(task.name)}[${label(task.name)}]`);
  const red: number[] = [];
  graph.edges.forEach((edge, index) => {
    out.push(`  ${ids.get(edge.from)} ${edge.kind === "after" ? "-.->" : "-->"} ${ids.get(edge.to)}`);
    if (edge.cyclic) red.push(index);
  });
  const cyclic = graph.tasks.filter((task) => task.cyclic).map((task) => ids.get(task.name)!);
  if (cyclic.length > 0) {
    out.push("  classDef cycle stroke:#d00,stroke-width:2px", `  class ${cyclic.join(",")} cycle`);
  }
  if (red.length > 0) out.push(`  linkStyle ${red.join(",")} stroke:#d00,stroke-width:2px`);
  return `${out.join("\n")}\n`;
}
