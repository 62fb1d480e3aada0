import { useEffect, useMemo, useRef, useState } from "react";
import { stateClass, TASK_STATE_NAMES, TASK_STATE_ORDER, type TaskState } from "../states.js";
import type { GroupGraph } from "./group-tasks.js";
import { type LayoutResult, layOut } from "./layout.js";

const NODE_WIDTH = 180;
const NODE_HEIGHT = 40;

interface DagViewProps {
  graph: GroupGraph;
  /** Changes when groups or edges change (a new layout), not when states do. */
  structureKey: string;
  /** Label of a node: the task's name, or the group's key. */
  labelOf: (key: string) => string;
  selected: string | undefined;
  onSelect: (key: string | undefined) => void;
  /** Called once the first layout is drawn, with how long it took. */
  onLaidOut?: (ms: number) => void;
}

/** The run's DAG, one node per group, coloured by its tasks' states; drag to pan, wheel to zoom. */
export function DagView({ graph, structureKey, labelOf, selected, onSelect, onLaidOut }: DagViewProps) {
  const [layout, setLayout] = useState<LayoutResult>();
  const [error, setError] = useState<string>();
  const [view, setView] = useState({ x: 0, y: 0, scale: 1 });
  const box = useRef<HTMLDivElement>(null);
  const drag = useRef<{ x: number; y: number; viewX: number; viewY: number; moved: boolean }>(undefined);

  // biome-ignore lint/correctness/useExhaustiveDependencies: a new layout only when the structure changes
  useEffect(() => {
    const controller = new AbortController();
    const nodes = [...graph.groups.keys()].map((id) => ({ id, width: NODE_WIDTH, height: NODE_HEIGHT }));
    layOut({ nodes, edges: graph.edges }, controller.signal).then(
      (result) => {
        if (controller.signal.aborted) return;
        setLayout(result);
        setView(fitInto(result, box.current));
        onLaidOut?.(result.ms);
      },
      (problem: unknown) => setError(String(problem)),
    );
    return () => controller.abort();
  }, [structureKey]);

  const paths = useMemo(
    () =>
      layout?.edges.map((edge) => ({
        key: `${edge.from}\u0000${edge.to}`,
        d: edge.points.map((p, i) => `${i === 0 ? "M" : "L"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(""),
      })) ?? [],
    [layout],
  );

  if (error) return <p className="problem">{error}</p>;
  return (
    <div
      ref={box}
      className="dag"
      data-laid-out={layout ? "yes" : "no"}
      onWheel={(event) => {
        const rect = event.currentTarget.getBoundingClientRect();
        const factor = event.deltaY < 0 ? 1.15 : 1 / 1.15;
        const px = event.clientX - rect.left;
        const py = event.clientY - rect.top;
        setView((v) => {
          const scale = Math.min(4, Math.max(0.02, v.scale * factor));
          return { scale, x: px - ((px - v.x) * scale) / v.scale, y: py - ((py - v.y) * scale) / v.scale };
        });
      }}
      onPointerDown={(event) => {
        drag.current = { x: event.clientX, y: event.clientY, viewX: view.x, viewY: view.y, moved: false };
      }}
      onPointerMove={(event) => {
        const start = drag.current;
        if (!start) return;
        const dx = event.clientX - start.x;
        const dy = event.clientY - start.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) start.moved = true;
        if (start.moved) setView((v) => ({ ...v, x: start.viewX + dx, y: start.viewY + dy }));
      }}
      onPointerUp={() => {
        drag.current = undefined;
      }}
    >
      {layout ? null : <p className="hint dag-wait">laying out {graph.groups.size} nodes…</p>}
      <div className="dag-tools">
        <button type="button" onClick={() => layout && setView(fitInto(layout, box.current))}>
          fit
        </button>
      </div>
      <svg width="100%" height="100%" aria-label="run graph">
        <title>run graph</title>
        <defs>
          <marker
            id="arrow"
            viewBox="0 0 8 8"
            refX="8"
            refY="4"
            markerWidth="6"
            markerHeight="6"
            orient="auto"
          >
            <path d="M0,0L8,4L0,8z" className="edge-head" />
          </marker>
        </defs>
        <g transform={`translate(${view.x},${view.y}) scale(${view.scale})`}>
          {paths.map((path) => (
            <path key={path.key} d={path.d} className="edge" markerEnd="url(#arrow)" />
          ))}
          {layout?.nodes.map((node) => {
            const group = graph.groups.get(node.id);
            if (!group) return null;
            return (
              <DagNode
                key={node.id}
                x={node.x - node.width / 2}
                y={node.y - node.height / 2}
                label={labelOf(node.id)}
                size={group.taskIds.length}
                counts={group.counts}
                selected={selected === node.id}
                onClick={() => {
                  if (!drag.current?.moved) onSelect(selected === node.id ? undefined : node.id);
                }}
              />
            );
          })}
        </g>
      </svg>
    </div>
  );
}

interface DagNodeProps {
  x: number;
  y: number;
  label: string;
  size: number;
  counts: Map<TaskState, number>;
  selected: boolean;
  onClick: () => void;
}

function DagNode({ x, y, label, size, counts, selected, onClick }: DagNodeProps) {
  let offset = 0;
  const dominant = TASK_STATE_ORDER.reduce<TaskState | undefined>(
    (best, state) =>
      (counts.get(state) ?? 0) > (best === undefined ? 0 : (counts.get(best) ?? 0)) ? state : best,
    undefined,
  );
  const title = `${label}${size > 1 ? ` (${size} tasks)` : ""}: ${TASK_STATE_ORDER.filter((s) =>
    counts.get(s),
  )
    .map((s) => `${TASK_STATE_NAMES[s]} ${counts.get(s)}`)
    .join(", ")}`;
  return (
    // biome-ignore lint/a11y/useSemanticElements: an SVG group cannot be a <button>
    <g
      transform={`translate(${x},${y})`}
      className={`dag-node ${dominant === undefined ? "" : stateClass(dominant)}${selected ? " selected" : ""}`}
      onClick={onClick}
      onKeyDown={(event) => event.key === "Enter" && onClick()}
      role="button"
      tabIndex={0}
      data-node={label}
    >
      <title>{title}</title>
      <rect width={NODE_WIDTH} height={NODE_HEIGHT} rx={4} className="node-box" />
      <text x={8} y={17} className="node-label">
        {clip(label, size > 1 ? 18 : 24)}
        {size > 1 ? ` ×${size}` : ""}
      </text>
      {TASK_STATE_ORDER.map((state) => {
        const count = counts.get(state) ?? 0;
        if (count === 0) return null;
        const width = ((NODE_WIDTH - 16) * count) / size;
        const rect = (
          <rect key={state} x={8 + offset} y={26} width={width} height={6} className={stateClass(state)} />
        );
        offset += width;
        return rect;
      })}
    </g>
  );
}

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

function fitInto(layout: LayoutResult, element: HTMLElement | null) {
  const width = element?.clientWidth ?? 800;
  const height = element?.clientHeight ?? 600;
  const scale = Math.min(1, width / Math.max(layout.width, 1), height / Math.max(layout.height, 1));
  return { scale, x: (width - layout.width * scale) / 2, y: (height - layout.height * scale) / 2 };
}
