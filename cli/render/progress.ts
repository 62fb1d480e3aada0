import pc from "picocolors";
import type { Run, Task, WatchRunResponse } from "../../core/gen/taskframe/v1/hub_pb.js";
import { isTerminal, TaskState, taskStateName } from "../../core/states.js";
import { elapsed, formatDuration, shortId, taskState } from "./format.js";
import { terminalSafeLine } from "./terminal-safe.js";

export interface TaskStep {
  task: Task;
  from: TaskState | undefined;
}

/** What a watcher of a run knows: every task's latest state, fed by WatchRun messages. */
export class RunProgress {
  readonly tasks = new Map<string, Task>();
  run: Run | undefined;

  constructor(private readonly startedAtMs = Date.now()) {}

  /** Takes a WatchRun message; returns the tasks whose state or attempt changed. */
  apply(message: WatchRunResponse): TaskStep[] {
    if (message.run) this.run = message.run;
    const steps: TaskStep[] = [];
    for (const task of message.tasks) {
      const previous = this.tasks.get(task.id);
      this.tasks.set(task.id, task);
      if (!previous || previous.state !== task.state || previous.attempt !== task.attempt) {
        steps.push({ task, from: previous?.state });
      }
    }
    return steps;
  }

  counts(): Map<TaskState, number> {
    const counts = new Map<TaskState, number>();
    for (const task of this.tasks.values()) counts.set(task.state, (counts.get(task.state) ?? 0) + 1);
    return counts;
  }

  get finished(): number {
    let done = 0;
    for (const task of this.tasks.values()) if (isTerminal(task.state)) done++;
    return done;
  }

  /** The live display: a bar with counts, then what is running now. */
  render(nowMs: number, columns: number): string {
    const total = this.tasks.size;
    const done = this.finished;
    const width = Math.max(10, Math.min(30, columns - 60));
    const filled = total === 0 ? 0 : Math.round((done / total) * width);
    const bar = `${pc.green("█".repeat(filled))}${pc.dim("░".repeat(width - filled))}`;
    const name = this.run ? `${this.run.name} ${pc.dim(shortId(this.run.id))}` : "";
    const lines = [
      `${name}  ${bar}  ${done}/${total}  ${formatDuration(nowMs - this.startedAtMs)}`,
      `  ${summarizeCounts(this.counts())}`,
    ];
    const running = [...this.tasks.values()].filter((t) => t.state === TaskState.RUNNING);
    if (running.length > 0) {
      const shown = running
        .slice(0, 6)
        .map((t) => `${t.name} ${pc.dim(elapsed(Number(t.startedAtUnixMs), 0, nowMs))}`)
        .join(", ");
      const more = running.length > 6 ? pc.dim(` +${running.length - 6} more`) : "";
      lines.push(truncate(`  running: ${shown}${more}`, columns));
    }
    return lines.join("\n");
  }
}

const COUNT_ORDER: [TaskState, string][] = [
  [TaskState.SUCCEEDED, "succeeded"],
  [TaskState.RUNNING, "running"],
  [TaskState.PENDING, "pending"],
  [TaskState.RETRYING, "retrying"],
  [TaskState.CREATED, "waiting"],
  [TaskState.FAILED, "failed"],
  [TaskState.TIMED_OUT, "timed out"],
  [TaskState.CHECK_FAILED, "check failed"],
  [TaskState.SKIPPED, "skipped"],
  [TaskState.CANCELLED, "cancelled"],
];

export function summarizeCounts(counts: ReadonlyMap<TaskState, number>): string {
  return COUNT_ORDER.filter(([state]) => (counts.get(state) ?? 0) > 0)
    .map(([state, label]) => `${counts.get(state)} ${label}`)
    .join(", ");
}

/** One plain line per state change, for logs and pipes. */
export function describeStep({ task }: TaskStep, nowMs: number, startedAtMs: number): string {
  const at = pc.dim(`[+${formatDuration(nowMs - startedAtMs)}]`);
  let note = "";
  if (task.state === TaskState.RUNNING)
    note = task.attempt > 1 ? `attempt ${task.attempt} of ${task.maxAttempts}` : "";
  else if (task.state === TaskState.SUCCEEDED)
    note = elapsed(Number(task.startedAtUnixMs), Number(task.finishedAtUnixMs));
  else note = terminalSafeLine(task.detail);
  return `${at} ${task.name} ${taskState(task.state)}${note ? ` ${pc.dim(note)}` : ""}`;
}

export const stateLabel = taskStateName;

/** Cuts a line to the terminal's width, ignoring color codes when counting. */
function truncate(line: string, columns: number): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI color sequences
  const visible = line.replace(/\x1b\[[0-9;]*m/g, "");
  if (visible.length <= columns) return line;
  return `${visible.slice(0, Math.max(0, columns - 1))}…`;
}
