import { existsSync } from "node:fs";
import { join } from "node:path";
import { logUpdateStderr } from "log-update";
import pc from "picocolors";
import { definitionKind, type LoadOptions } from "../../core/definitions/load.js";
import { loadSchedules } from "../../core/definitions/schedules.js";
import type { BackfillScheduleResponse } from "../../core/gen/taskframe/v1/hub_pb.js";
import type { ScheduleSpec } from "../../core/gen/taskframe/v1/schedule_pb.js";
import { DataDirLock } from "../../embedded/data-dir-lock.js";
import { CliError, ExitCode } from "../cli-error.js";
import { followRunToEnd } from "../follow-run.js";
import { type HubClient, toCliError, withHubClient } from "../hub-client.js";
import { dataDirOf, type StoreOptions } from "../options.js";
import { shortId } from "../render/format.js";
import { printJson, runJson } from "../render/json.js";
import {
  backfillProgressLine,
  backfillSummary,
  describeNextFire,
  evaluationJson,
  evaluationsTable,
  fireJson,
  firesTable,
  parseTimeArgument,
  registeredTable,
  scheduleHeading,
  scheduleJson,
  scheduleTable,
} from "../render/schedules.js";

const out = (text: string) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
const note = (text: string) => process.stderr.write(pc.dim(`${text}\n`));

/** Where a command's schedules live: a hub at --hub, a live `task dev`/`task run` on the data dir, or the store alone. */
type StoreKind = "hub" | "live" | "store";

function storeKind(options: StoreOptions): StoreKind {
  if (options.hub) return "hub";
  return DataDirLock.readOwner(dataDirOf(options))?.socketPath ? "live" : "store";
}

/**
 * Commands that start runs (trigger, backfill) need a hub that runs them:
 * the embedded store alone has no sidecar, and its runs would be abandoned.
 */
function requireRunningHub(options: StoreOptions, command: string): void {
  if (storeKind(options) !== "store") return;
  throw new CliError(
    `${command} starts runs, so it needs a running hub: start 'task dev' on ${options.data} ` +
      "(or give --hub URL)",
    ExitCode.Unavailable,
  );
}

/** As withHubClient; with `create`, a data directory that does not exist yet is made (schedules apply). */
async function withStore<T>(
  options: StoreOptions,
  action: (client: HubClient) => Promise<T>,
  create = false,
): Promise<T> {
  const dataDir = dataDirOf(options);
  if (!create || storeKind(options) !== "store" || existsSync(join(dataDir, "pglite")))
    return withHubClient(options, action);
  const { EmbeddedEngine } = await import("../../embedded/engine.js");
  const engine = await EmbeddedEngine.open({ dataDir, sidecar: false });
  try {
    return await action(engine.client());
  } catch (error) {
    throw toCliError(error);
  } finally {
    await engine.close();
  }
}

/**
 * Reads the schedules of every file; a file that defines none is an error
 * (`none` says what to do instead), as is one name defined twice.
 */
export async function loadScheduleFiles(
  files: readonly string[],
  options: LoadOptions,
): Promise<{ schedules: ScheduleSpec[]; unscheduled: string[] }> {
  const schedules: ScheduleSpec[] = [];
  const unscheduled: string[] = [];
  const definedIn = new Map<string, string>();
  const perFile = await loadOptionsPerFile(files, options);
  for (const file of files) {
    const found = await loadSchedules(file, perFile.get(file) ?? options);
    if (found.length === 0) unscheduled.push(file);
    for (const spec of found) {
      const earlier = definedIn.get(spec.name);
      if (earlier !== undefined) {
        throw new CliError(
          `schedule ${JSON.stringify(spec.name)} is defined twice: in ${earlier} and in ${file}`,
          ExitCode.Usage,
        );
      }
      definedIn.set(spec.name, file);
      schedules.push(spec);
    }
  }
  return { schedules, unscheduled };
}

/**
 * --param is for YAML pipelines, and a unit given it alone is an error; given
 * with pipelines (task dev a.yaml b.task --param X=1), units do without.
 */
export async function loadOptionsPerFile(
  files: readonly string[],
  options: LoadOptions,
): Promise<Map<string, LoadOptions>> {
  const kinds = await Promise.all(files.map((file) => definitionKind(file)));
  const mixed = kinds.includes("pipeline") && kinds.some((kind) => kind !== "pipeline");
  return new Map(
    files.map((file, index) => [
      file,
      mixed && kinds[index] !== "pipeline" ? { ...options, params: {} } : options,
    ]),
  );
}

export const NO_SCHEDULE_HINT =
  "a unit schedules with [RunIf] cron= (or Requires= with Interval=), a YAML pipeline with a schedule: block";

/** `task schedule ls [NAMES...]`. */
export async function scheduleListCommand(names: string[], options: StoreOptions): Promise<number> {
  return withHubClient(options, async (client) => {
    const { schedules } = await client.listSchedules({ names });
    const missing = names.filter((n) => !schedules.some((s) => s.spec?.name === n));
    if (missing.length > 0) throw new CliError(`no schedule named ${missing.join(", ")}`, ExitCode.Usage);
    if (options.json) {
      printJson(schedules.map(scheduleJson));
      return ExitCode.Ok;
    }
    if (schedules.length === 0) {
      out("no schedules");
      note("register some with: task schedule apply FILE...   (or run them with: task dev FILE...)");
      return ExitCode.Ok;
    }
    out(scheduleTable(schedules, Date.now(), process.cwd()));
    return ExitCode.Ok;
  });
}

/** `task schedule apply FILES...`: registers (or replaces) the schedules the files define. */
export async function scheduleApplyCommand(
  files: string[],
  options: StoreOptions & { param?: Record<string, string>; tenant?: string },
): Promise<number> {
  const { schedules, unscheduled } = await loadScheduleFiles(files, {
    params: options.param ?? {},
    env: process.env,
  });
  if (unscheduled.length > 0) {
    throw new CliError(
      `no schedule in ${unscheduled.join(", ")}: ${NO_SCHEDULE_HINT} (run it once with task run)`,
      ExitCode.Usage,
    );
  }
  const kind = storeKind(options);
  return withStore(
    options,
    async (client) => {
      const { schedules: registered } = await client.putSchedules({
        schedules,
        tenant: options.tenant ?? "",
      });
      if (options.json) {
        printJson(registered.map(scheduleJson));
        return ExitCode.Ok;
      }
      out(registeredTable(registered, Date.now(), process.cwd()));
      const count = registered.length === 1 ? "1 schedule" : `${registered.length} schedules`;
      if (kind === "store")
        note(`registered ${count} in ${options.data}; they fire while 'task dev' runs on it`);
      else note(`registered ${count}`);
      return ExitCode.Ok;
    },
    true,
  );
}

/** `task schedule pause NAME [--reason TEXT]`. */
export async function schedulePauseCommand(
  name: string,
  options: StoreOptions & { reason?: string },
): Promise<number> {
  return withHubClient(options, async (client) => {
    const { schedule } = await client.pauseSchedule({ name, reason: options.reason ?? "" });
    if (options.json) printJson(schedule ? scheduleJson(schedule) : null);
    else out(`paused ${name}${options.reason ? ` (${options.reason})` : ""}: it fires nothing until resumed`);
    return ExitCode.Ok;
  });
}

/** `task schedule resume NAME`. */
export async function scheduleResumeCommand(name: string, options: StoreOptions): Promise<number> {
  return withHubClient(options, async (client) => {
    const { schedule } = await client.resumeSchedule({ name });
    if (options.json) {
      printJson(schedule ? scheduleJson(schedule) : null);
      return ExitCode.Ok;
    }
    const next = schedule?.nextFireUnixMs ? `: next fire ${describeNextFire(schedule, Date.now())}` : "";
    out(`resumed ${name}${next}`);
    return ExitCode.Ok;
  });
}

/** `task schedule trigger NAME [-f]`: a run now, whatever the trigger and the overlap policy say. */
export async function scheduleTriggerCommand(
  name: string,
  options: StoreOptions & { follow?: boolean; quiet?: boolean },
): Promise<number> {
  requireRunningHub(options, "task schedule trigger");
  return withHubClient(options, async (client) => {
    const { run } = await client.triggerSchedule({ name });
    if (!run) throw new CliError("the hub returned no run", ExitCode.Unavailable);
    if (!options.follow) {
      if (options.json) printJson(runJson(run));
      else {
        out(run.id);
        note(`triggered ${name}: run ${run.id}; task status ${shortId(run.id)}`);
      }
      return ExitCode.Ok;
    }
    if (!options.json) note(`triggered ${name}: run ${run.id} (${run.totalTasks} tasks)`);
    return followRunToEnd(client, run.id, run.totalTasks, {
      ...(options.json ? { json: true } : {}),
      ...(options.quiet ? { quiet: true } : {}),
      source: run.source || name,
    });
  });
}

/** `task schedule history NAME [--limit N]`: fires, and a condition schedule's evaluations. */
export async function scheduleHistoryCommand(
  name: string,
  options: StoreOptions & { limit?: number },
): Promise<number> {
  return withHubClient(options, async (client) => {
    const { schedule, fires, evaluations } = await client.getScheduleHistory({
      name,
      limit: options.limit ?? 0,
    });
    if (options.json) {
      printJson({
        schedule: schedule ? scheduleJson(schedule) : null,
        fires: fires.map(fireJson),
        evaluations: evaluations.map(evaluationJson),
      });
      return ExitCode.Ok;
    }
    if (schedule) out(`${scheduleHeading(schedule, Date.now(), process.cwd())}\n`);
    out(fires.length > 0 ? firesTable(fires) : "no fires yet");
    const condition = schedule?.spec?.trigger.case === "condition";
    if (condition || evaluations.length > 0) {
      out(`\n${pc.bold("Condition evaluations")}`);
      out(evaluations.length > 0 ? evaluationsTable(evaluations) : "none yet");
      const newest = evaluations.find((e) => e.taskId);
      if (newest) note(`a check's output: task logs ${newest.taskId}`);
    }
    return ExitCode.Ok;
  });
}

/** `task schedule rm NAME`. */
export async function scheduleRemoveCommand(name: string, options: StoreOptions): Promise<number> {
  return withHubClient(options, async (client) => {
    await client.deleteSchedule({ name });
    if (options.json) printJson({ deleted: name });
    else out(`removed schedule ${name}; its runs stay (task ls)`);
    return ExitCode.Ok;
  });
}

export interface BackfillOptions extends StoreOptions {
  from: string;
  to?: string;
  max?: number;
}

/**
 * `task backfill NAME --from TIME [--to TIME]`: fires every slot of a cron
 * schedule in [from, to) that has not fired, oldest first, with progress.
 */
export async function backfillCommand(name: string, options: BackfillOptions): Promise<number> {
  const now = Date.now();
  const time = (flag: string, text: string) => {
    try {
      return parseTimeArgument(text, now);
    } catch (error) {
      throw new CliError(`${flag}: ${(error as Error).message}`, ExitCode.Usage);
    }
  };
  const from = time("--from", options.from);
  const to = options.to === undefined ? now : time("--to", options.to);
  if (from >= to) {
    throw new CliError(
      `--from must be before --to: ${new Date(from).toISOString()} is not before ${new Date(to).toISOString()}`,
      ExitCode.Usage,
    );
  }
  if (to > now + 1_000) {
    throw new CliError(
      `--to ${new Date(to).toISOString()} is in the future: a backfill fires past slots (the schedule fires ` +
        "the others when their time comes)",
      ExitCode.Usage,
    );
  }
  requireRunningHub(options, "task backfill");
  return withHubClient(options, async (client) => {
    const display = options.json ? undefined : backfillDisplay(name);
    let last: BackfillScheduleResponse | undefined;
    const runIds: string[] = [];
    try {
      for await (const progress of client.backfillSchedule({
        name,
        fromUnixMs: BigInt(from),
        toUnixMs: BigInt(to),
        maxSlots: options.max ?? 0,
      })) {
        last = progress;
        runIds.push(...progress.runIds);
        display?.update(progress);
      }
    } finally {
      display?.done(last);
    }
    const complete = !last || last.done >= last.slots;
    if (options.json) {
      printJson({
        schedule: name,
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        slots: last?.slots ?? 0,
        done: last?.done ?? 0,
        started: last?.started ?? 0,
        already_fired: last?.alreadyFired ?? 0,
        run_ids: runIds,
      });
    } else {
      out(backfillSummary(name, last, from, to));
      if (runIds.length > 0) note(`follow them with: task schedule history ${name}   task ls`);
    }
    return complete ? ExitCode.Ok : ExitCode.Failed;
  });
}

/** One updating line on a TTY; otherwise a plain line at most every second (and the last one). */
function backfillDisplay(name: string) {
  if (process.stderr.isTTY) {
    let lastDraw = 0;
    return {
      update(progress: BackfillScheduleResponse) {
        if (Date.now() - lastDraw < 100) return;
        lastDraw = Date.now();
        logUpdateStderr(backfillProgressLine(name, progress));
      },
      done(progress: BackfillScheduleResponse | undefined) {
        logUpdateStderr(backfillProgressLine(name, progress));
        logUpdateStderr.done();
      },
    };
  }
  let lastLine = 0;
  let shown: BackfillScheduleResponse | undefined;
  return {
    update(progress: BackfillScheduleResponse) {
      if (Date.now() - lastLine < 1_000 && progress.done < progress.slots) return;
      lastLine = Date.now();
      shown = progress;
      process.stderr.write(`${backfillProgressLine(name, progress)}\n`);
    },
    done(progress: BackfillScheduleResponse | undefined) {
      if (progress && progress !== shown) process.stderr.write(`${backfillProgressLine(name, progress)}\n`);
    },
  };
}
