import pc from "picocolors";
import { LogStream } from "../../core/gen/taskframe/v1/state_pb.js";
import { isTerminal, TaskState, taskStateName } from "../../core/states.js";
import { ExitCode } from "../cli-error.js";
import { withHubClient } from "../hub-client.js";
import type { StoreOptions } from "../options.js";
import { shortId } from "../render/format.js";
import { printJson, taskJson } from "../render/json.js";
import { terminalSafe } from "../render/terminal-safe.js";
import { taskRef } from "./read-commands.js";

export interface ResultOptions extends StoreOptions {
  run?: string;
  /** Log lines shown for a task without an output. */
  lines?: number;
}

const DEFAULT_LINES = 10;

/**
 * `task result NAME|ID`: a handler task's output as it returned it (bytes to
 * stdout, so it pipes), or an executable's end: state, exit code, reason and
 * the last lines of its last attempt's log. Exit status: 0 when the task
 * succeeded, 1 when it ended otherwise, 4 while it has not ended.
 */
export async function resultCommand(name: string, options: ResultOptions): Promise<number> {
  return withHubClient(options, async (client) => {
    const { task } = await client.getTask({ task: taskRef(name, options.run) });
    if (!task) return ExitCode.Usage;
    const status = !isTerminal(task.state)
      ? ExitCode.NotFinished
      : task.state === TaskState.SUCCEEDED
        ? ExitCode.Ok
        : ExitCode.Failed;
    const tail: string[] = [];
    if (task.output.length === 0 && task.attempt > 0) {
      for await (const chunk of client.getLogs({ task: { taskId: task.id }, attempt: task.attempt })) {
        for (const entry of chunk.entries) {
          const text = Buffer.from(entry.data).toString("utf8");
          const prefix =
            entry.stream === LogStream.STDERR
              ? "stderr"
              : entry.stream === LogStream.SYSTEM
                ? "taskframe"
                : "stdout";
          for (const line of text.split("\n")) if (line) tail.push(`${prefix}: ${terminalSafe(line)}`);
        }
      }
    }
    const lines = tail.slice(-(options.lines ?? DEFAULT_LINES));
    if (options.json) {
      printJson({
        task: taskJson(task),
        output: task.output.length > 0 ? Buffer.from(task.output).toString("utf8") : null,
        output_content_type: task.outputContentType || null,
        last_lines: lines,
      });
      return status;
    }
    if (task.output.length > 0) {
      // bytes as returned when piped; shown, not obeyed, on a terminal
      process.stdout.write(
        process.stdout.isTTY ? terminalSafe(Buffer.from(task.output).toString("utf8")) : task.output,
      );
      if (process.stdout.isTTY && task.output.at(-1) !== 0x0a) process.stdout.write("\n");
      return status;
    }
    const exit = task.exitCode === undefined ? "" : `, exit code ${task.exitCode}`;
    const attempt = task.attempt > 0 ? `, attempt ${task.attempt} of ${task.maxAttempts}` : "";
    process.stdout.write(
      `${pc.bold(task.name)} (run ${shortId(task.runId)}): ${taskStateName(task.state)}${exit}${attempt}\n` +
        (task.detail ? `${terminalSafe(task.detail)}\n` : ""),
    );
    if (lines.length > 0) {
      const shown = tail.length > lines.length ? `last ${lines.length} of ${tail.length} lines` : "log";
      process.stdout.write(
        `${pc.dim(`-- ${shown} (task logs ${task.name} for all) --`)}\n${lines.join("\n")}\n`,
      );
    }
    return status;
  });
}
