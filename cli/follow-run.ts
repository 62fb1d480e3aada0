import { relative } from "node:path";
import type { Client } from "@connectrpc/connect";
import { logUpdateStderr } from "log-update";
import pc from "picocolors";
import type { HubService, Run, Task } from "../core/gen/taskframe/v1/hub_pb.js";
import { RunState, TaskState } from "../core/states.js";
import { ExitCode } from "./cli-error.js";
import { elapsed, runState, shortId, taskState } from "./render/format.js";
import { printJson, runJson, taskJson } from "./render/json.js";
import { describeStep, RunProgress, summarizeCounts } from "./render/progress.js";
import { renderTable } from "./render/table.js";
import { terminalSafeLine } from "./render/terminal-safe.js";

/** Runs with more tasks than this print periodic summaries instead of a line per change (when not a TTY). */
const LINE_PER_CHANGE_LIMIT = 200;
/** Summary tables list every task up to this many; beyond, only those that did not succeed. */
const FULL_SUMMARY_LIMIT = 50;

export interface FollowOptions {
  /** Print the final state as JSON (and no live display). */
  json?: boolean;
  /** No live display; the summary only. */
  quiet?: boolean;
  /** The definition's path, for the summary line. */
  source: string;
}

/**
 * Follows a run to its end with a live display on stderr (a bar and counts
 * on a TTY, a line per change otherwise), then prints the summary (or JSON)
 * on stdout. Returns the exit status: 0 only if every task succeeded.
 */
export async function followRunToEnd(
  client: Client<typeof HubService>,
  runId: string,
  taskCount: number,
  options: FollowOptions,
): Promise<number> {
  const display = options.json || options.quiet ? undefined : createDisplay(taskCount);
  const progress = await follow(client, runId, display);
  const final = (await client.listTasks({ runId })).tasks;
  const finalRun = (await client.getRun({ runId })).run ?? progress.run;
  if (options.json) printJson({ run: finalRun && runJson(finalRun), tasks: final.map(taskJson) });
  else printSummary(finalRun, final, options.source);
  return finalRun?.state === RunState.SUCCEEDED ? ExitCode.Ok : ExitCode.Failed;
}

interface Display {
  update(progress: RunProgress, steps: ReturnType<RunProgress["apply"]>): void;
  done(progress: RunProgress): void;
}

async function follow(
  client: Client<typeof HubService>,
  runId: string,
  display: Display | undefined,
): Promise<RunProgress> {
  const progress = new RunProgress();
  for await (const message of client.watchRun({ runId })) {
    const steps = progress.apply(message);
    display?.update(progress, steps);
  }
  display?.done(progress);
  return progress;
}

function createDisplay(taskCount: number): Display {
  const startedAt = Date.now();
  if (process.stderr.isTTY) {
    const draw = logUpdateStderr;
    let last = 0;
    let timer: NodeJS.Timeout | undefined;
    let latest: RunProgress | undefined;
    const paint = () => latest && draw(latest.render(Date.now(), process.stderr.columns ?? 80));
    return {
      update(progress, steps) {
        latest = progress;
        for (const step of steps) {
          const bad = [TaskState.FAILED, TaskState.TIMED_OUT, TaskState.RETRYING, TaskState.CHECK_FAILED];
          if (bad.includes(step.task.state)) {
            draw.clear();
            process.stderr.write(`${describeStep(step, Date.now(), startedAt)}\n`);
          }
        }
        timer ??= setInterval(paint, 100);
        if (Date.now() - last > 100) {
          last = Date.now();
          paint();
        }
      },
      done(progress) {
        clearInterval(timer);
        draw(progress.render(Date.now(), process.stderr.columns ?? 80));
        draw.done();
      },
    };
  }
  if (taskCount <= LINE_PER_CHANGE_LIMIT) {
    return {
      update(_progress, steps) {
        for (const step of steps) {
          const initial =
            step.from === undefined && [TaskState.CREATED, TaskState.PENDING].includes(step.task.state);
          if (!initial) process.stderr.write(`${describeStep(step, Date.now(), startedAt)}\n`);
        }
      },
      done() {},
    };
  }
  let lastLine = 0;
  const line = (progress: RunProgress) =>
    `[+${elapsed(startedAt, 0)}] ${progress.finished}/${progress.tasks.size} done: ${summarizeCounts(progress.counts())}\n`;
  return {
    update(progress) {
      if (Date.now() - lastLine < 2_000) return;
      lastLine = Date.now();
      process.stderr.write(line(progress));
    },
    done(progress) {
      process.stderr.write(line(progress));
    },
  };
}

function printSummary(run: Run | undefined, tasks: readonly Task[], file: string): void {
  if (!run) return;
  const shown =
    tasks.length <= FULL_SUMMARY_LIMIT ? tasks : tasks.filter((t) => t.state !== TaskState.SUCCEEDED);
  if (shown.length > 0) {
    const rows = shown
      .slice(0, 500)
      .map((t) => [
        t.name,
        taskState(t.state),
        `${t.attempt}/${t.maxAttempts}`,
        elapsed(Number(t.startedAtUnixMs), Number(t.finishedAtUnixMs)),
        terminalSafeLine(t.detail),
      ]);
    process.stdout.write(`${renderTable(["TASK", "STATE", "ATTEMPTS", "DURATION", "DETAIL"], rows)}\n`);
    if (shown.length > 500)
      process.stdout.write(pc.dim(`... and ${shown.length - 500} more (task status ${shortId(run.id)})\n`));
  }
  if (shown.length < tasks.length) {
    process.stdout.write(
      pc.dim(`${tasks.length - shown.length} more tasks succeeded (task status ${shortId(run.id)})\n`),
    );
  }
  const counts = new Map(run.counts.map((c) => [c.state, c.count]));
  const took = elapsed(Number(run.createdAtUnixMs), Number(run.finishedAtUnixMs));
  const where = relative(process.cwd(), file) || file;
  process.stdout.write(
    `\n${run.state === RunState.SUCCEEDED ? pc.green("✓") : pc.red("✗")} run ${shortId(run.id)} (${where}) ` +
      `${runState(run.state)} in ${took}: ${summarizeCounts(counts)}\n`,
  );
  if (run.state !== RunState.SUCCEEDED) {
    const failed = tasks.find((t) =>
      [TaskState.FAILED, TaskState.TIMED_OUT, TaskState.CHECK_FAILED].includes(t.state),
    );
    if (failed) process.stdout.write(pc.dim(`  see: task logs ${failed.name}   task audit ${failed.name}\n`));
  }
}
