import { relative } from "node:path";
import type { Client } from "@connectrpc/connect";
import { logUpdateStderr } from "log-update";
import pc from "picocolors";
import { loadPipelineFile } from "../../core/definitions/yaml-pipeline.js";
import type { HubService, Run, Task } from "../../core/gen/taskframe/v1/hub_pb.js";
import { createLogger } from "../../core/logger.js";
import { RunState, TaskState } from "../../core/states.js";
import { EmbeddedEngine } from "../../embedded/engine.js";
import { ExitCode } from "../cli-error.js";
import { toCliError } from "../hub-client.js";
import { dataDirOf } from "../options.js";
import { elapsed, runState, shortId, taskState } from "../render/format.js";
import { printJson, runJson, taskJson } from "../render/json.js";
import { describeStep, RunProgress, summarizeCounts } from "../render/progress.js";
import { renderTable } from "../render/table.js";

export interface RunCommandOptions {
  data: string;
  slots?: number;
  json?: boolean;
  quiet?: boolean;
}

/** Runs with more tasks than this print periodic summaries instead of a line per change (when not a TTY). */
const LINE_PER_CHANGE_LIMIT = 200;
/** Summary tables list every task up to this many; beyond, only those that did not succeed. */
const FULL_SUMMARY_LIMIT = 50;

/**
 * `task run FILE`: hub and sidecar in this process on the embedded store;
 * runs the pipeline to the end with a live display; exits 0 only if every
 * task succeeded.
 */
export async function runCommand(file: string, options: RunCommandOptions): Promise<number> {
  const spec = await loadPipelineFile(file);
  const engine = await EmbeddedEngine.open({
    dataDir: dataDirOf(options),
    ...(options.slots ? { slots: options.slots } : {}),
    logger: createLogger("taskframe", "warn"),
  });
  const interrupts = new InterruptHandler();
  try {
    const client = engine.client();
    const { run } = await client.submitRun({ run: spec });
    if (!run) throw new Error("the hub returned no run");
    // announced once the run exists, so that `task logs -f NAME` elsewhere finds it
    await engine.serve();
    interrupts.onFirst(() => {
      process.stderr.write(pc.yellow("\ncancelling the run (press Ctrl-C again to stop at once)...\n"));
      void client.cancelRun({ runId: run.id, reason: "interrupted (Ctrl-C)" });
    });
    const display = options.json || options.quiet ? undefined : createDisplay(spec.tasks.length);
    const progress = await follow(client, run.id, display);
    const final = (await client.listTasks({ runId: run.id })).tasks;
    const finalRun = (await client.getRun({ runId: run.id })).run ?? progress.run;
    if (options.json) printJson({ run: finalRun && runJson(finalRun), tasks: final.map(taskJson) });
    else printSummary(finalRun, final, file);
    if (interrupts.count > 0) return ExitCode.Interrupted;
    return finalRun?.state === RunState.SUCCEEDED ? ExitCode.Ok : ExitCode.Failed;
  } catch (error) {
    throw toCliError(error);
  } finally {
    interrupts.dispose();
    await engine.close();
  }
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
        t.detail,
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

/** First Ctrl-C: a graceful cancel. Second: leave at once (the engine's close still kills every task). */
class InterruptHandler {
  count = 0;
  #first: (() => void) | undefined;
  readonly #listener = () => {
    this.count++;
    if (this.count === 1 && this.#first) this.#first();
    else process.exit(ExitCode.Interrupted);
  };

  constructor() {
    process.on("SIGINT", this.#listener);
    process.on("SIGTERM", this.#listener);
  }

  onFirst(action: () => void): void {
    this.#first = action;
  }

  dispose(): void {
    process.off("SIGINT", this.#listener);
    process.off("SIGTERM", this.#listener);
  }
}
