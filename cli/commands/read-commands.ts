import pc from "picocolors";
import { parseDurationMs } from "../../core/definitions/duration.js";
import { LogStream } from "../../core/gen/taskframe/v1/state_pb.js";
import { parseTaskState, TaskState, taskStateName } from "../../core/states.js";
import { CliError, ExitCode } from "../cli-error.js";
import { withHubClient } from "../hub-client.js";
import type { StoreOptions } from "../options.js";
import { elapsed, runState, shortId, taskState, timestamp } from "../render/format.js";
import { auditJson, logJson, printJson, runJson, taskJson } from "../render/json.js";
import { mapReduceLines } from "../render/mapreduce.js";
import { summarizeCounts } from "../render/progress.js";
import { parseTimeArgument } from "../render/schedules.js";
import { renderTable } from "../render/table.js";
import { terminalSafeLine } from "../render/terminal-safe.js";

const out = (text: string) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);

/** `task ls`: runs, newest first; with --all, the runs that evaluate schedules' conditions too. */
export async function listRunsCommand(
  options: StoreOptions & { limit: number; all?: boolean },
): Promise<number> {
  return withHubClient(options, async (client) => {
    const { runs } = await client.listRuns({
      limit: options.limit,
      includeEvaluations: options.all ?? false,
    });
    if (options.json) {
      printJson(runs.map(runJson));
      return ExitCode.Ok;
    }
    if (runs.length === 0) {
      out("no runs yet");
      return ExitCode.Ok;
    }
    const rows = runs.map((r) => {
      const counts = new Map(r.counts.map((c) => [c.state, c.count]));
      return [
        shortId(r.id),
        r.name,
        runState(r.state),
        `${counts.get(TaskState.SUCCEEDED) ?? 0}/${r.totalTasks}`,
        timestamp(Number(r.createdAtUnixMs)),
        elapsed(Number(r.createdAtUnixMs), Number(r.finishedAtUnixMs)),
      ];
    });
    out(renderTable(["RUN", "NAME", "STATE", "SUCCEEDED", "CREATED", "DURATION"], rows));
    return ExitCode.Ok;
  });
}

/** `task status [RUN]`: a run and its tasks (default: the newest run). */
export async function statusCommand(
  runId: string | undefined,
  options: StoreOptions & { state?: string[] },
): Promise<number> {
  const states = (options.state ?? []).map((name) => {
    const state = parseTaskState(name);
    if (state === undefined) throw new CliError(`--state: unknown state '${name}'`, ExitCode.Usage);
    return state;
  });
  return withHubClient(options, async (client) => {
    const { run, tasks } = await client.listTasks({ runId: runId ?? "", states });
    if (!run) throw new CliError("the hub returned no run", ExitCode.Unavailable);
    if (options.json) {
      printJson({ run: runJson(run), tasks: tasks.map(taskJson) });
      return ExitCode.Ok;
    }
    const counts = new Map(run.counts.map((c) => [c.state, c.count]));
    out(`${pc.bold(run.name)}  run ${run.id}  ${runState(run.state)}`);
    out(
      pc.dim(
        `  ${run.source ? `${run.source}, ` : ""}started ${timestamp(Number(run.createdAtUnixMs))}, ` +
          `${run.finishedAtUnixMs ? "took" : "running for"} ${elapsed(Number(run.createdAtUnixMs), Number(run.finishedAtUnixMs))}`,
      ),
    );
    out(`  ${summarizeCounts(counts)}`);
    if (run.mapreduce) for (const line of mapReduceLines(run.mapreduce, tasks)) out(line);
    out("");
    const rows = tasks.map((t) => [
      t.name,
      taskState(t.state),
      `${t.attempt}/${t.maxAttempts}`,
      elapsed(Number(t.startedAtUnixMs), Number(t.finishedAtUnixMs)),
      t.exitCode === undefined ? "" : String(t.exitCode),
      terminalSafeLine(t.detail),
    ]);
    out(renderTable(["TASK", "STATE", "ATTEMPTS", "DURATION", "EXIT", "DETAIL"], rows));
    return ExitCode.Ok;
  });
}

export interface LogsOptions extends StoreOptions {
  run?: string;
  attempt?: number;
  follow?: boolean;
  stdout?: boolean;
  stderr?: boolean;
  timestamps?: boolean;
  /** Only output from then on: a duration back from now (`10m`) or an ISO 8601 time. */
  since?: string;
}

/** `--since 10m` or `--since 2026-11-27T14:00`: the instant, in ms. */
export function sinceInstant(text: string, nowMs = Date.now()): number {
  try {
    return nowMs - parseDurationMs(text);
  } catch {
    try {
      return parseTimeArgument(text, nowMs);
    } catch {
      throw new CliError(
        `--since: expected a duration back from now (10m, 2h) or an ISO 8601 time (2026-11-27T14:00), got ${JSON.stringify(text)}`,
        ExitCode.Usage,
      );
    }
  }
}

/**
 * `task logs NAME`: what a task wrote, byte for byte: its stdout to stdout,
 * its stderr and Taskframe's own notes to stderr (as `docker logs` does).
 */
export async function logsCommand(name: string, options: LogsOptions): Promise<number> {
  const streams: LogStream[] = [];
  if (options.stdout) streams.push(LogStream.STDOUT);
  if (options.stderr) streams.push(LogStream.STDERR);
  if (streams.length > 0) streams.push(LogStream.SYSTEM);
  const sinceMs = options.since ? sinceInstant(options.since) : 0;
  return withHubClient(options, async (client) => {
    let attemptShown = 0;
    let attemptsSeen = 0;
    const request = {
      task: taskRef(name, options.run),
      attempt: options.attempt ?? 0,
      follow: options.follow ?? false,
      streams,
    };
    for await (const response of client.getLogs(request)) {
      for (const entry of response.entries) {
        if (Number(entry.atUnixMs) < sinceMs) continue;
        if (options.json) {
          process.stdout.write(`${JSON.stringify(logJson(entry))}\n`);
          continue;
        }
        if (entry.attempt !== attemptShown) {
          attemptsSeen++;
          attemptShown = entry.attempt;
          // attempts are told apart only when there were several
          if ((response.task?.attempt ?? 1) > 1 && !options.attempt) {
            process.stderr.write(
              pc.dim(`${attemptsSeen > 1 ? "\n" : ""}==> ${name}: attempt ${entry.attempt} <==\n`),
            );
          }
        }
        const target = entry.stream === LogStream.STDOUT ? process.stdout : process.stderr;
        const data =
          entry.stream === LogStream.SYSTEM
            ? Buffer.from(pc.yellow(Buffer.from(entry.data).toString()))
            : entry.data;
        target.write(options.timestamps ? withTimestamps(data, Number(entry.atUnixMs)) : data);
      }
    }
    return ExitCode.Ok;
  });
}

function withTimestamps(data: Uint8Array, atMs: number): Buffer {
  const prefix = Buffer.from(`${pc.dim(timestamp(atMs, true))} `);
  const lines = Buffer.from(data)
    .toString("latin1")
    .split(/(?<=\n)/);
  return Buffer.concat(lines.map((line) => Buffer.concat([prefix, Buffer.from(line, "latin1")])));
}

/** `task audit NAME`: every state change of a task, rejected results included. */
export async function auditCommand(name: string, options: StoreOptions & { run?: string }): Promise<number> {
  return withHubClient(options, async (client) => {
    const { task, events } = await client.getAudit({ task: taskRef(name, options.run) });
    if (options.json) {
      printJson({ task: task && taskJson(task), events: events.map(auditJson) });
      return ExitCode.Ok;
    }
    if (task)
      out(`${pc.bold(task.name)}  task ${task.id}  run ${shortId(task.runId)}  ${taskState(task.state)}`);
    const rows = events.map((e) => [
      timestamp(Number(e.atUnixMs), true),
      e.attempt ? String(e.attempt) : "",
      `${e.from ? taskStateName(e.from) : "-"} -> ${e.rejected ? pc.red(`${taskStateName(e.to)} REJECTED`) : taskState(e.to)}`,
      e.host,
      e.exitCode === undefined ? "" : String(e.exitCode),
      terminalSafeLine(e.detail),
    ]);
    out(renderTable(["TIME", "ATTEMPT", "TRANSITION", "HOST", "EXIT", "DETAIL"], rows));
    return ExitCode.Ok;
  });
}

/** `task cancel [RUN]`: cancels what has not started and stops what runs. */
export async function cancelCommand(
  runId: string | undefined,
  options: StoreOptions & { reason?: string },
): Promise<number> {
  return withHubClient(options, async (client) => {
    const { run, cancelledTasks } = await client.cancelRun({
      runId: runId ?? "",
      reason: options.reason ?? "",
    });
    if (options.json) {
      printJson({ run: run && runJson(run), cancelled_tasks: cancelledTasks });
      return ExitCode.Ok;
    }
    if (!run) return ExitCode.Failed;
    if (cancelledTasks === 0) out(`run ${shortId(run.id)} is ${runState(run.state)}: nothing to cancel`);
    else out(`run ${shortId(run.id)}: ${cancelledTasks} tasks cancelled or stopping`);
    return ExitCode.Ok;
  });
}

/** A task named by id (a UUID) or by name. */
export function taskRef(name: string, run: string | undefined) {
  const isId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(name);
  return isId ? { taskId: name, runId: "", name: "" } : { taskId: "", runId: run ?? "", name };
}
