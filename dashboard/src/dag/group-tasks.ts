import type { Task } from "../../../core/gen/taskframe/v1/hub_pb.js";
import type { TaskState } from "../states.js";

/** Runs with at most this many tasks are drawn task by task; bigger ones by group. */
export const UNGROUPED_LIMIT = 200;
/** At most this many nodes are drawn: past it, groups are merged by the first part of their names. */
export const NODE_LIMIT = 500;

export interface TaskGroup {
  key: string;
  /** Ids of its tasks, in the run's order. */
  taskIds: string[];
  counts: Map<TaskState, number>;
}

export interface GroupGraph {
  groups: Map<string, TaskGroup>;
  /** Group key of each task id. */
  groupOf: Map<string, string>;
  /** `from → to` pairs between groups, each once. */
  edges: [string, string][];
}

/**
 * A for_each fan-out (`fetch-0` … `fetch-1999`) or a task's dynamic children
 * (`map/part-1` …) differ only in their numbers: tasks whose names are equal
 * once every number is read as `#` form one group, drawn as one node.
 */
export const groupKeyOf = (name: string): string => name.replace(/\d+/g, "#");

/** The coarser grouping: names up to their first `-`, `_`, `.` or `/`. */
export const prefixKeyOf = (name: string): string => {
  const prefix = name.match(/^[^-_./]+[-_./]/)?.[0];
  return prefix ? `${prefix}*` : groupKeyOf(name);
};

/**
 * The run's graph at the finest grouping that stays drawable: task by task
 * for a small run, by numbered family past UNGROUPED_LIMIT tasks, by name
 * prefix when that still leaves more than NODE_LIMIT nodes.
 */
export function groupRun(tasks: readonly Task[]): GroupGraph {
  if (tasks.length <= UNGROUPED_LIMIT) return groupTasks(tasks, (task) => task.id);
  const families = groupTasks(tasks, (task) => groupKeyOf(task.name));
  return families.groups.size <= NODE_LIMIT ? families : groupTasks(tasks, (task) => prefixKeyOf(task.name));
}

export function groupTasks(tasks: readonly Task[], keyOf: (task: Task) => string): GroupGraph {
  const groups = new Map<string, TaskGroup>();
  const groupOf = new Map<string, string>();
  const idByName = new Map<string, string>();
  for (const task of tasks) idByName.set(task.name, task.id);
  for (const task of tasks) {
    const key = keyOf(task);
    let group = groups.get(key);
    if (!group) {
      group = { key, taskIds: [], counts: new Map() };
      groups.set(key, group);
    }
    group.taskIds.push(task.id);
    group.counts.set(task.state, (group.counts.get(task.state) ?? 0) + 1);
    groupOf.set(task.id, key);
  }
  const seen = new Set<string>();
  const edges: [string, string][] = [];
  for (const task of tasks) {
    const to = groupOf.get(task.id)!;
    for (const need of [...task.needs, ...task.after]) {
      const from = groupOf.get(idByName.get(need) ?? need);
      if (from === undefined || from === to) continue;
      const pair = `${from}\u0000${to}`;
      if (seen.has(pair)) continue;
      seen.add(pair);
      edges.push([from, to]);
    }
  }
  return { groups, groupOf, edges };
}

/** Recounts states per group after tasks changed (the grouping itself stays). */
export function recount(graph: GroupGraph, tasks: ReadonlyMap<string, Task>): void {
  for (const group of graph.groups.values()) {
    group.counts = new Map();
    for (const id of group.taskIds) {
      const state = tasks.get(id)?.state;
      if (state !== undefined) group.counts.set(state, (group.counts.get(state) ?? 0) + 1);
    }
  }
}
