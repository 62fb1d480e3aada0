/** The shape both functions need: a node's name and the names it depends on. */
export interface DagNode {
  name: string;
  needs: readonly string[];
}

interface Graph {
  names: string[];
  /** Node i needs targets[offsets[i]] .. targets[offsets[i + 1] - 1]; needs naming no node are dropped. */
  offsets: Int32Array;
  targets: Int32Array;
}

function buildGraph(tasks: readonly DagNode[]): Graph {
  const index = new Map<string, number>();
  const owners: DagNode[] = [];
  for (const task of tasks) {
    if (index.has(task.name)) continue;
    index.set(task.name, owners.length);
    owners.push(task);
  }
  const offsets = new Int32Array(owners.length + 1);
  const collected: number[] = [];
  const seen = new Set<number>();
  for (let node = 0; node < owners.length; node++) {
    for (const need of owners[node]!.needs) {
      const target = index.get(need);
      if (target === undefined || seen.has(target)) continue;
      seen.add(target);
      collected.push(target);
    }
    seen.clear();
    offsets[node + 1] = collected.length;
  }
  return { names: owners.map((task) => task.name), offsets, targets: Int32Array.from(collected) };
}

const UNVISITED = 0;
const ON_STACK = 1;
const DONE = 2;

/**
 * Finds a dependency cycle, returned as a path along `needs` edges whose first name is repeated at
 * the end (`["a", "b", "a"]`: a needs b, b needs a), or undefined if there is none. Needs that name
 * no task are ignored. Iterative depth-first search, O(V + E), so million-task chains are fine.
 */
export function findCycle(tasks: readonly DagNode[]): string[] | undefined {
  const { names, offsets, targets } = buildGraph(tasks);
  return findCycleByIndex(names.length, offsets, targets, (node) => names[node]!);
}

/**
 * `findCycle` over a graph already indexed: node i needs targets[offsets[i]] ..
 * targets[offsets[i + 1] - 1] (every target below `count`). For callers that index their
 * nodes anyway (the hub's check of a submitted run), so that the names are hashed once.
 */
export function findCycleByIndex(
  count: number,
  offsets: Int32Array,
  targets: Int32Array,
  nameOf: (node: number) => string,
): string[] | undefined {
  const state = new Uint8Array(count);
  // Explicit DFS stack: node index and how many of its edges have been followed.
  const stackNode = new Int32Array(count);
  const stackEdge = new Int32Array(count);
  const stackPos = new Int32Array(count);
  for (let root = 0; root < count; root++) {
    if (state[root] !== UNVISITED) continue;
    let depth = 0;
    stackNode[0] = root;
    stackEdge[0] = 0;
    stackPos[root] = 0;
    state[root] = ON_STACK;
    while (depth >= 0) {
      const node = stackNode[depth]!;
      const edge = offsets[node]! + stackEdge[depth]!;
      if (edge === offsets[node + 1]) {
        state[node] = DONE;
        depth--;
        continue;
      }
      stackEdge[depth] = stackEdge[depth]! + 1;
      const next = targets[edge]!;
      if (state[next] === ON_STACK) {
        const cycle: string[] = [];
        for (let i = stackPos[next]!; i <= depth; i++) cycle.push(nameOf(stackNode[i]!));
        cycle.push(nameOf(next));
        return cycle;
      }
      if (state[next] === UNVISITED) {
        depth++;
        stackNode[depth] = next;
        stackEdge[depth] = 0;
        stackPos[next] = depth;
        state[next] = ON_STACK;
      }
    }
  }
  return undefined;
}

/**
 * Names ordered so that every task comes after all the tasks it needs; ties keep the input order
 * of the ready tasks (Kahn's algorithm). Undefined if the graph has a cycle.
 */
export function topologicalOrder(tasks: readonly DagNode[]): string[] | undefined {
  const { names, offsets, targets } = buildGraph(tasks);
  const count = names.length;
  // Reverse the edges (CSR again): who is waiting on each node.
  const dependentOffsets = new Int32Array(count + 1);
  for (const target of targets) dependentOffsets[target + 1] = dependentOffsets[target + 1]! + 1;
  for (let node = 0; node < count; node++) {
    dependentOffsets[node + 1] = dependentOffsets[node + 1]! + dependentOffsets[node]!;
  }
  const dependents = new Int32Array(targets.length);
  const fill = dependentOffsets.slice(0, count);
  const waitingOn = new Int32Array(count);
  for (let node = 0; node < count; node++) {
    waitingOn[node] = offsets[node + 1]! - offsets[node]!;
    for (let edge = offsets[node]!; edge < offsets[node + 1]!; edge++) {
      const target = targets[edge]!;
      dependents[fill[target]!] = node;
      fill[target] = fill[target]! + 1;
    }
  }
  const queue = new Int32Array(count);
  let tail = 0;
  for (let node = 0; node < count; node++) if (waitingOn[node] === 0) queue[tail++] = node;
  for (let head = 0; head < tail; head++) {
    const node = queue[head]!;
    for (let edge = dependentOffsets[node]!; edge < dependentOffsets[node + 1]!; edge++) {
      const dependent = dependents[edge]!;
      waitingOn[dependent] = waitingOn[dependent]! - 1;
      if (waitingOn[dependent] === 0) queue[tail++] = dependent;
    }
  }
  if (tail !== count) return undefined;
  return Array.from(queue, (node) => names[node]!);
}
