import { useEffect, useRef, useState } from "react";
import type { Run, Task } from "../../core/gen/taskframe/v1/hub_pb.js";
import { hub } from "./api.js";
import { messageOf } from "./use-poll.js";

export interface WatchedRun {
  run: Run | undefined;
  /** Every task by id; the same Map, changed in place. */
  tasks: Map<string, Task>;
  /** The tasks in the run's order, a new array at every change (at most one a frame). */
  ordered: Task[];
  /** Bumped when tasks were added (a new layout is due). */
  structure: number;
  error: string | undefined;
}

/**
 * Follows a run through WatchRun: the first message has every task, later
 * ones the changed tasks. Changes are applied to one Map and the page is
 * told once per animation frame, however many arrive. A dropped stream is
 * reopened (it starts again with every task).
 */
export function useRunWatch(runId: string): WatchedRun {
  const tasks = useRef(new Map<string, Task>());
  const [state, setState] = useState<Omit<WatchedRun, "tasks">>({
    run: undefined,
    ordered: [],
    structure: 0,
    error: undefined,
  });
  useEffect(() => {
    const controller = new AbortController();
    const { signal } = controller;
    tasks.current = new Map();
    let frame = 0;
    let pending: { run?: Run; added: boolean } | undefined;
    const flush = () => {
      frame = 0;
      const update = pending;
      pending = undefined;
      if (!update) return;
      setState((previous) => ({
        run: update.run ?? previous.run,
        ordered: [...tasks.current.values()],
        structure: previous.structure + (update.added ? 1 : 0),
        error: undefined,
      }));
    };
    const follow = async () => {
      while (!signal.aborted) {
        try {
          for await (const message of hub.watchRun({ runId }, { signal })) {
            let added = false;
            for (const task of message.tasks) {
              if (!tasks.current.has(task.id)) added = true;
              tasks.current.set(task.id, task);
            }
            pending = { run: message.run ?? pending?.run, added: added || (pending?.added ?? false) };
            frame ||= requestAnimationFrame(flush);
          }
          return; // the run is over: the hub ends the stream
        } catch (error) {
          if (signal.aborted) return;
          setState((previous) => ({ ...previous, error: `${messageOf(error)} (reconnecting)` }));
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
      }
    };
    void follow();
    return () => {
      controller.abort();
      cancelAnimationFrame(frame);
    };
  }, [runId]);
  return { ...state, tasks: tasks.current };
}
