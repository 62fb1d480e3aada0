import dagre from "@dagrejs/dagre";
import type { LayoutRequest, LayoutResult } from "./layout.js";

self.onmessage = (event: MessageEvent<LayoutRequest>) => {
  const started = performance.now();
  const { nodes, edges } = event.data;
  const graph = new dagre.graphlib.Graph();
  graph.setGraph({ rankdir: "LR", nodesep: 12, ranksep: 48, marginx: 16, marginy: 16 });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const node of nodes) graph.setNode(node.id, { width: node.width, height: node.height });
  for (const [from, to] of edges) graph.setEdge(from, to);
  dagre.layout(graph);
  const result: LayoutResult = {
    nodes: nodes.map((node) => {
      const placed = graph.node(node.id);
      return { id: node.id, x: placed.x, y: placed.y, width: node.width, height: node.height };
    }),
    edges: edges.map(([from, to]) => ({ from, to, points: graph.edge(from, to)?.points ?? [] })),
    width: graph.graph().width ?? 0,
    height: graph.graph().height ?? 0,
    ms: performance.now() - started,
  };
  self.postMessage(result);
};
