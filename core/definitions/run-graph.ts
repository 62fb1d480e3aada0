import type { RunSpec } from "../gen/taskframe/v1/spec_pb.js";

/** A dependency: `to` waits for `from`; `kind` says whether `from` must succeed or only end. */
export interface GraphEdge {
  from: string;
  to: string;
  kind: "needs" | "after";
  /** On a dependency cycle: none of the tasks on it can ever start. */
  cyclic: boolean;
}

export interface GraphTask {
  name: string;
  needs: readonly string[];
  after: readonly string[];
  /** 0-based topological layer; undefined for a task on a cycle or waiting on one. */
  level: number | undefined;
  cyclic: boolean;
}

/** A run's DAG laid out for display: layers, edges and, when the definition has them, its cycles. */
export interface RunGraph {
  name: string;
  tasks: GraphTask[];
  /** Task names by layer: layer 0 waits for nothing, layer n for something in layer n-1. */
  levels: string[][];
  edges: GraphEdge[];
  /** Each cycle as a path whose first name is repeated at the end (`a -> b -> a`). */
  cycles: string[][];
}

/** Lays out a run; dependencies on names that are not tasks of the run are left out of the edges. */
export function runGraph(spec: RunSpec): RunGraph {
  const names = spec.tasks.map((task) => task.name);
  const index = new Map(names.map((name, i) => [name, i]));
  const deps = spec.tasks.map((task) =>
    [...new Set([...task.needs, ...task.after])].flatMap((name) => {
      const found = index.get(name);
      return found === undefined ? [] : [found];
    }),
  );
  const component = stronglyConnected(deps);
  const size = new Map<number, number>();
  for (const id of component) size.set(id, (size.get(id) ?? 0) + 1);
  const onCycle = deps.map((list, node) => size.get(component[node]!)! > 1 || list.includes(node));
  const level = layers(deps);
  const edges: GraphEdge[] = [];
  spec.tasks.forEach((task, node) => {
    const add = (list: readonly string[], kind: GraphEdge["kind"]) => {
      for (const from of new Set(list)) {
        const source = index.get(from);
        if (source === undefined) continue;
        edges.push({
          from,
          to: task.name,
          kind,
          cyclic: component[source] === component[node] && onCycle[node]!,
        });
      }
    };
    add(task.needs, "needs");
    add(
      task.after.filter((name) => !task.needs.includes(name)),
      "after",
    );
  });
  const levels: string[][] = [];
  spec.tasks.forEach((task, node) => {
    const at = level[node];
    if (at === undefined) return;
    while (levels.length <= at) levels.push([]);
    levels[at]!.push(task.name);
  });
  return {
    name: spec.name,
    tasks: spec.tasks.map((task, node) => ({
      name: task.name,
      needs: task.needs,
      after: task.after,
      level: level[node],
      cyclic: onCycle[node]!,
    })),
    levels,
    edges,
    cycles: cycles(deps, component, onCycle, names),
  };
}

/** Kahn's algorithm by rounds: a task's layer is one more than its deepest dependency's. */
function layers(deps: readonly number[][]): (number | undefined)[] {
  const waiting = deps.map((list) => list.length);
  const dependents: number[][] = deps.map(() => []);
  deps.forEach((list, node) => {
    for (const dep of list) dependents[dep]!.push(node);
  });
  const level: (number | undefined)[] = deps.map(() => undefined);
  let round = deps.flatMap((list, node) => (list.length === 0 ? [node] : []));
  for (let depth = 0; round.length > 0; depth++) {
    const next: number[] = [];
    for (const node of round) {
      level[node] = depth;
      for (const dependent of dependents[node]!) {
        waiting[dependent]! -= 1;
        if (waiting[dependent] === 0) next.push(dependent);
      }
    }
    round = next;
  }
  return level;
}

/** Tarjan's algorithm without recursion, so long chains do not overflow the stack. */
function stronglyConnected(deps: readonly number[][]): number[] {
  const count = deps.length;
  const order = new Array<number>(count).fill(-1);
  const low = new Array<number>(count).fill(0);
  const component = new Array<number>(count).fill(-1);
  const stack: number[] = [];
  const onStack = new Array<boolean>(count).fill(false);
  let counter = 0;
  let components = 0;
  for (let root = 0; root < count; root++) {
    if (order[root] !== -1) continue;
    const frames: [node: number, edge: number][] = [[root, 0]];
    order[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = true;
    while (frames.length > 0) {
      const frame = frames.at(-1)!;
      const [node, edge] = frame;
      const list = deps[node]!;
      if (edge < list.length) {
        frame[1] = edge + 1;
        const next = list[edge]!;
        if (order[next] === -1) {
          order[next] = low[next] = counter++;
          stack.push(next);
          onStack[next] = true;
          frames.push([next, 0]);
        } else if (onStack[next]) low[node] = Math.min(low[node]!, order[next]!);
        continue;
      }
      frames.pop();
      const parent = frames.at(-1);
      if (parent) low[parent[0]] = Math.min(low[parent[0]]!, low[node]!);
      if (low[node] === order[node]) {
        let member: number;
        do {
          member = stack.pop()!;
          onStack[member] = false;
          component[member] = components;
        } while (member !== node);
        components++;
      }
    }
  }
  return component;
}

/** One cycle through each strongly connected group of tasks, found by walking inside the group. */
function cycles(
  deps: readonly number[][],
  component: readonly number[],
  onCycle: readonly boolean[],
  names: readonly string[],
): string[][] {
  const found: string[][] = [];
  const seen = new Set<number>();
  deps.forEach((_, start) => {
    if (!onCycle[start] || seen.has(component[start]!)) return;
    seen.add(component[start]!);
    const path = [start];
    const position = new Map([[start, 0]]);
    let node = start;
    for (;;) {
      const next = deps[node]!.find((dep) => component[dep] === component[start]);
      if (next === undefined) break;
      const at = position.get(next);
      if (at !== undefined) {
        found.push([...path.slice(at), next].map((i) => names[i]!));
        break;
      }
      position.set(next, path.length);
      path.push(next);
      node = next;
    }
  });
  return found;
}
