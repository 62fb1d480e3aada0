import { TaskframeError, TaskframeErrorCode } from "./errors.js";

/**
 * Named places where a test can make this process fail on purpose:
 * `TASKFRAME_FAILPOINTS=hub.mapreduce.commit.after_output=exit,...`. Inert
 * unless the variable is set. Actions: `exit` (SIGKILL to itself: no cleanup,
 * no flushing, like a crash), `throw` (an error at that point).
 */
export type FailpointAction = "exit" | "throw";

const ACTIONS = new Set<string>(["exit", "throw"]);

export function parseFailpoints(text: string): Map<string, FailpointAction> {
  const points = new Map<string, FailpointAction>();
  for (const entry of text.split(",")) {
    if (!entry.trim()) continue;
    const [name, action = "exit"] = entry.split("=").map((part) => part.trim());
    if (!name || !ACTIONS.has(action)) {
      throw new TaskframeError(
        TaskframeErrorCode.InvalidArgument,
        `TASKFRAME_FAILPOINTS: ${JSON.stringify(entry)}: expected NAME=exit or NAME=throw, separated by commas`,
      );
    }
    points.set(name, action as FailpointAction);
  }
  return points;
}

const configured = parseFailpoints(process.env.TASKFRAME_FAILPOINTS ?? "");

/** Fails here if the environment asked for it; nothing otherwise. */
export function failpoint(name: string): void {
  const action = configured.get(name);
  if (action === undefined) return;
  if (action === "throw") throw new Error(`failpoint ${name}`);
  process.stderr.write(`failpoint ${name}: killing this process (SIGKILL)\n`);
  process.kill(process.pid, "SIGKILL");
}
