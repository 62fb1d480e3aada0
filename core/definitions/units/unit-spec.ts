import { isAbsolute, resolve } from "node:path";
import { instantOf } from "../schedule-values.js";
import type {
  CommandTemplate,
  CompiledUnit,
  MapReduceSettings,
  TaskTemplate,
  UnitReference,
  UnitScheduleSettings,
} from "./compiled-unit.js";
import type { IniPosition } from "./ini.js";
import { setOwn } from "./set-own.js";
import type { Listed, UnitFields } from "./unit-fields.js";
import type { ParsedUnit } from "./unit-file.js";
import { taskNameOf } from "./unit-names.js";

/** systemd's default RestartSec. */
export const DEFAULT_RESTART_MS = 100;
/** What a unit without a command (a target) runs once its checks pass. */
export const TARGET_COMMAND = "true";

/** A command with "/" that is not absolute is relative to the unit's directory; bare names stay for PATH. */
export function resolveCommand(command: string, dir: string): string {
  if (!command.includes("/") || isAbsolute(command)) return command;
  // The common "./name" needs no normalising (`dir` is already absolute and normalised).
  if (/^\.\/[^/]+$/.test(command) && command !== "./." && command !== "./..") {
    return dir.endsWith("/") ? dir + command.slice(2) : `${dir}/${command.slice(2)}`;
  }
  return resolve(dir, command);
}

const commandOf = (
  name: string,
  [command = "", ...args]: readonly string[],
  dir: string,
): CommandTemplate => ({
  name,
  command: resolveCommand(command, dir),
  args,
});

const references = (listed: readonly Listed<string>[] | undefined): UnitReference[] =>
  listed === undefined ? [] : listed.map(({ value, line, column }) => ({ written: value, line, column }));

const values = (listed: readonly Listed<string>[] | undefined): string[] =>
  (listed ?? []).map((item) => item.value);

/** Turns a parsed unit into its task template and the settings kept beside it. */
export function compileUnit(parsed: ParsedUnit, dir: string): CompiledUnit {
  const { fields } = parsed;
  const service = fields.Service ?? {};
  const [command = TARGET_COMMAND, ...commandArgs] = fields.Command?.command ?? [];
  const name = taskNameOf(parsed.fileName);
  const env: Record<string, string> = {};
  for (const entry of fields.Environment ?? []) setOwn(env, entry.name, entry.value);
  const args = fields.Args?.args;
  const task: TaskTemplate = {
    name,
    args: args === undefined || args.length === 0 ? commandArgs : [...commandArgs, ...args],
    env,
    cwd: service.WorkingDirectory === undefined ? dir : resolve(dir, service.WorkingDirectory),
    retries: service.Restart ?? 0,
    retryIntervalMs: service.RestartSec ?? DEFAULT_RESTART_MS,
    nonRetryableExitCodes: service.RestartPreventExitStatus ?? [],
    timeoutMs: service.MaxTime ?? 0,
    memoryBytes: service.LimitMem ?? 0n,
    diskBytes: service.LimitDisk ?? 0n,
    pids: service.LimitPids ?? 0,
    cpuMillis: service.LimitCPU ?? 0,
    privateNetwork: service.PrivateNetwork ?? false,
    jail: service.Jail ?? "",
    checks: (fields.Checks ?? []).map((entry) => commandOf(entry.name, entry.value, dir)),
    user: service.User ?? "",
    group: service.Group ?? "",
    definedAt: `${parsed.file}:${parsed.sections.get("Command")?.line ?? 1}`,
  };
  if (!fields.MapReduce || fields.Command) task.command = resolveCommand(command, dir);
  const condition = fields.RunIf?.Requires;
  // Named by the command as written, so that logs say "condition ./check.sh not met".
  if (condition) task.condition = commandOf(condition[0] ?? "", condition, dir);
  const install = fields.Install;
  if (install) {
    const from = install.From === undefined ? "" : resolve(dir, install.From);
    task.install = {
      pip: values(install.pip),
      npm: values(install.npm),
      apt: values(install.apt),
      from,
      artifacts: (install.Artifact ?? []).map(({ value }) => ({ ...value })),
    };
  }
  const unit: CompiledUnit = {
    fileName: parsed.fileName,
    file: parsed.file,
    dir,
    name,
    kind: parsed.kind,
    builtin: false,
    requires: references(fields.Dependencies?.Requires),
    after: references(fields.Dependencies?.After),
    wants: references(fields.Dependencies?.Wants),
    task,
  };
  const runIf = fields.RunIf;
  if (runIf?.cron !== undefined) unit.cron = runIf.cron;
  if (runIf?.Interval !== undefined) unit.intervalMs = runIf.Interval;
  if (runIf) {
    const schedule = scheduleSettings(runIf);
    if (schedule) unit.schedule = schedule;
  }
  if (fields.MapReduce) {
    const header = parsed.sections.get("MapReduce") ?? { line: 1, column: 1 };
    unit.mapReduce = mapReduce(fields.MapReduce, dir, header);
  }
  return unit;
}

/** The settings of `[RunIf]` besides its trigger; undefined when there are none. */
function scheduleSettings(runIf: NonNullable<UnitFields["RunIf"]>): UnitScheduleSettings | undefined {
  const { TimeZone, Overlap, CatchUp, Jitter, Start, End, Timeout, Mode } = runIf;
  const settings: UnitScheduleSettings = {};
  if (TimeZone !== undefined) settings.timezone = TimeZone;
  if (Overlap !== undefined) settings.overlap = Overlap;
  if (CatchUp !== undefined) settings.catchUp = CatchUp;
  if (Jitter !== undefined) settings.jitterMs = Jitter;
  if (Start !== undefined) settings.startMs = instantOf(Start, TimeZone);
  if (End !== undefined) settings.endMs = instantOf(End, TimeZone);
  if (Timeout !== undefined) settings.conditionTimeoutMs = Timeout;
  if (Mode !== undefined) settings.conditionMode = Mode;
  return Object.keys(settings).length > 0 ? settings : undefined;
}

function mapReduce(
  fields: NonNullable<UnitFields["MapReduce"]>,
  dir: string,
  header: IniPosition,
): MapReduceSettings {
  const argv = ([command = "", ...args]: readonly string[]) => [resolveCommand(command, dir), ...args];
  return {
    line: header.line,
    column: header.column,
    map: argv(fields.map),
    reduce: argv(fields.reduce),
    input: fields.input,
    ...(fields.partitions === undefined ? {} : { partitions: fields.partitions }),
    ...(fields.output === undefined ? {} : { output: fields.output }),
    ...(fields.combine === undefined ? {} : { combine: argv(fields.combine) }),
    ...(fields.reducers === undefined ? {} : { reducers: fields.reducers }),
    ...(fields.work === undefined ? {} : { work: fields.work }),
  };
}
