/** What the layout worker is asked: boxes and the edges between them. */
export interface LayoutRequest {
  nodes: { id: string; width: number; height: number }[];
  edges: [string, string][];
}

export interface LayoutResult {
  nodes: { id: string; x: number; y: number; width: number; height: number }[];
  edges: { from: string; to: string; points: { x: number; y: number }[] }[];
  width: number;
  height: number;
  ms: number;
}

/**
 * Lays the graph out with dagre in a worker, so that a big DAG never freezes
 * the page; `signal` ends the worker when the answer is no longer wanted.
 */
export function layOut(request: LayoutRequest, signal: AbortSignal): Promise<LayoutResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./layout.worker.ts", import.meta.url), { type: "module" });
    const end = () => worker.terminate();
    signal.addEventListener("abort", end, { once: true });
    worker.onmessage = (event: MessageEvent<LayoutResult>) => {
      signal.removeEventListener("abort", end);
      end();
      resolve(event.data);
    };
    worker.onerror = (event) => {
      signal.removeEventListener("abort", end);
      end();
      reject(new Error(`graph layout failed: ${event.message}`));
    };
    worker.postMessage(request);
  });
}
