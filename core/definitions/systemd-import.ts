import { basename } from "node:path";
import { quote, split } from "shlex";
import { DefinitionError, DefinitionErrors, errorMessage } from "../errors.js";
import { calendarToSchedule } from "./systemd-calendar.js";
import { convertExecStart } from "./systemd-exec.js";
import { formatTimeSpan, parseTimeSpanMs } from "./systemd-time.js";
import {
  lastValue,
  listValues,
  parseSystemdUnit,
  type SystemdEntry,
  type SystemdUnit,
} from "./systemd-unit-file.js";
import { MAX_CPU_PERCENT, PIDS_INFINITY } from "./units/jail-settings.js";
import { parseBoolean } from "./units/unit-values.js";
import { splitCommandLine } from "./words.js";

/** A file given to `task import-systemd`: its path (for messages) and text. */
export interface SystemdSource {
  file: string;
  text: string;
}

export interface ImportedUnit {
  /** The Taskframe unit, INI text. */
  text: string;
  /** How many directives were left as `# not converted:` comments. */
  notConverted: number;
}

const SECTION_ORDER = ["Dependencies", "Service", "Environment", "Command", "RunIf"];
const KEPT_TYPES = new Set(["simple", "exec", "oneshot"]);
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ACCOUNT = /^(?:[A-Za-z_][A-Za-z0-9_.-]{0,255}\$?|\d{1,10})$/;
const SIZE = /^(?:\d+(?:\.\d+)?[KMGTPE]?|infinity)$/;
/** Why some [Service] keys are not converted, when it is not obvious. */
const JAIL_REASON = "every task runs in its pool's jail; Jail=strict asks for a stricter one";
const SERVICE_REASONS: Readonly<Record<string, string>> = {
  PrivateTmp: "every jailed task has a private /tmp; its size is LimitDisk=",
  LimitCPU: "systemd's LimitCPU= is CPU seconds; Taskframe's LimitCPU= is a share of one CPU, as CPUQuota=",
  LimitNPROC: "a limit of the user's processes; LimitPids= limits the task's (as TasksMax=)",
  ProtectSystem: JAIL_REASON,
  ProtectHome: JAIL_REASON,
  NoNewPrivileges: JAIL_REASON,
  DynamicUser: JAIL_REASON,
};
const RESTART_ON_FAILURE = new Set(["on-failure", "always", "on-abnormal", "on-abort", "on-watchdog"]);

/** A value as a Taskframe unit reads it back: in double quotes, `\` and `"` escaped. */
const iniQuote = (text: string): string => `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;

/**
 * Converts a systemd service (and optionally its timer) into a Taskframe unit. Directives without
 * an equivalent are kept as `# not converted: Key=Value` comments, so nothing is lost silently;
 * what would change meaning if converted (ExecStart prefixes, unknown variables, calendar forms
 * cron cannot express) is a DefinitionError at its line. Several are reported together.
 */
export function importSystemd(service: SystemdSource, timer?: SystemdSource): ImportedUnit {
  const problems: DefinitionError[] = [];
  const parse = (source: SystemdSource): SystemdUnit | undefined => {
    try {
      return parseSystemdUnit(source.text, source.file);
    } catch (error) {
      if (error instanceof DefinitionErrors) problems.push(...error.problems);
      else if (error instanceof DefinitionError) problems.push(error);
      else throw error;
      return undefined;
    }
  };
  const serviceUnit = parse(service);
  const timerUnit = timer ? parse(timer) : undefined;
  DefinitionErrors.throwIfAny(problems);
  const writer = new UnitWriter(problems);
  convertService(writer, serviceUnit!);
  if (timerUnit) convertTimer(writer, timerUnit, basename(service.file));
  const files = [service.file, timer?.file];
  DefinitionErrors.throwIfAny(
    problems.sort(
      (a, b) =>
        files.indexOf(a.location.file) - files.indexOf(b.location.file) ||
        (a.location.line ?? 0) - (b.location.line ?? 0),
    ),
  );
  const sources = timer ? `${basename(service.file)} and ${basename(timer.file)}` : basename(service.file);
  return {
    text: writer.render(`Converted from ${sources} by \`task import-systemd\`.`),
    notConverted: writer.skipped,
  };
}

/** Collects the unit's lines by section, the comments, and the problems. */
class UnitWriter {
  readonly header: string[] = [];
  private readonly sections = new Map<string, string[]>();
  private readonly leftovers: string[] = [];
  /** Entries converted or deliberately dropped; the rest become `# not converted:` comments. */
  private readonly handled = new Set<SystemdEntry>();
  skipped = 0;

  constructor(private readonly problems: DefinitionError[]) {}

  set(section: string, line: string): void {
    const lines = this.sections.get(section) ?? [];
    lines.push(line);
    this.sections.set(section, lines);
  }

  done(...entries: (SystemdEntry | undefined)[]): void {
    for (const entry of entries) if (entry) this.handled.add(entry);
  }

  /** Keeps an entry (or one word of it) as a comment, with why when it is not obvious. */
  skip(entry: SystemdEntry, reason?: string, value = entry.value): void {
    this.handled.add(entry);
    this.skipped++;
    this.leftovers.push(`# not converted: ${entry.key}=${value}`);
    if (reason) this.leftovers.push(`#   (${reason})`);
  }

  fail(unit: SystemdUnit, entry: SystemdEntry, problem: string): void {
    this.handled.add(entry);
    this.problems.push(
      new DefinitionError(
        { file: unit.file, line: entry.line, column: 1, path: `${entry.section}.${entry.key}` },
        problem,
      ),
    );
  }

  /** Every entry of the unit not handled yet becomes a comment. */
  skipTheRest(unit: SystemdUnit, reasons: Readonly<Record<string, string>> = {}): void {
    for (const entry of unit.entries) {
      if (!this.handled.has(entry)) this.skip(entry, reasons[entry.section]);
    }
  }

  render(origin: string): string {
    const out = [`# ${origin}`, ...this.header.map((line) => `# ${line}`), ""];
    for (const name of SECTION_ORDER) {
      const lines = this.sections.get(name);
      if (!lines) continue;
      out.push(`[${name}]`, ...lines, "");
    }
    if (this.leftovers.length > 0) out.push(...this.leftovers, "");
    return `${out.join("\n").trimEnd()}\n`;
  }
}

function convertService(writer: UnitWriter, unit: SystemdUnit): void {
  const fileName = basename(unit.file);
  for (const entry of unit.entries) {
    if (entry.section !== "Unit" || (entry.key !== "Description" && entry.key !== "Documentation")) continue;
    writer.done(entry);
    if (entry.value !== "") {
      writer.header.push(entry.key === "Description" ? entry.value : `Documentation: ${entry.value}`);
    }
  }
  convertDependencies(writer, unit);
  const type = lastValue(unit, "Service", "Type");
  if (type && KEPT_TYPES.has(type.value)) writer.done(type);
  else if (type) {
    writer.skip(type, "a task is a command that runs to its end; the main process must not fork or notify");
  }
  const environment = convertEnvironment(writer, unit);
  const environmentFiles = listValues(unit, "Service", "EnvironmentFile");
  for (const entry of environmentFiles) {
    writer.skip(
      entry,
      "read when the service starts, and may hold secrets: copy the variables the task needs into [Environment]",
    );
  }
  convertCommand(writer, unit, environment, fileName, environmentFiles.length > 0);
  convertAccounts(writer, unit);
  convertWorkingDirectory(writer, unit);
  convertLimits(writer, unit, type?.value);
  convertJail(writer, unit);
  convertRestart(writer, unit);
  for (const entry of unit.entries) {
    const reason = entry.section === "Service" ? SERVICE_REASONS[entry.key] : undefined;
    if (reason) writer.skip(entry, reason);
  }
  writer.skipTheRest(unit, {
    Install: "systemd's [Install] says what pulls the unit in at boot; Taskframe's [Install] lists packages",
  });
}

/** Requires=, After= and Wants=, word by word: services and network.target are kept, the rest noted. */
function convertDependencies(writer: UnitWriter, unit: SystemdUnit): void {
  for (const key of ["Requires", "After", "Wants"]) {
    const kept: string[] = [];
    for (const entry of unit.entries.filter((e) => e.section === "Unit" && e.key === key)) {
      writer.done(entry);
      if (entry.value === "") {
        kept.length = 0;
        continue;
      }
      for (const name of entry.value.split(/\s+/)) {
        if (name === "network-online.target" || name === "network.target") {
          if (!kept.includes("network.target")) kept.push("network.target");
        } else if (name.endsWith(".service") && !name.includes("@")) {
          if (!kept.includes(name)) kept.push(name);
        } else {
          const why = name.includes("@")
            ? "template instances have no Taskframe equivalent"
            : "a systemd unit that is not a service; Taskframe has network.target built in";
          writer.skip(entry, why, name);
        }
      }
    }
    if (kept.length > 0) writer.set("Dependencies", `${key}=${kept.join(" ")}`);
  }
}

/** Environment= assignments (quoted as systemd quotes them); later ones win. */
function convertEnvironment(writer: UnitWriter, unit: SystemdUnit): Map<string, string> {
  const variables = new Map<string, string>();
  for (const entry of listValues(unit, "Service", "Environment")) {
    writer.done(entry);
    let words: string[];
    try {
      words = split(entry.value);
    } catch (error) {
      writer.fail(unit, entry, `cannot split the assignments: ${errorMessage(error)}`);
      continue;
    }
    for (const word of words) {
      const equals = word.indexOf("=");
      const name = word.slice(0, equals);
      if (equals <= 0 || !ENV_NAME.test(name)) {
        writer.fail(unit, entry, `expected NAME=VALUE assignments, got ${JSON.stringify(word)}`);
      } else if (name.startsWith("TASKFRAME_")) {
        writer.fail(unit, entry, `${name}: TASKFRAME_* variables are set by Taskframe for every task`);
      } else {
        variables.delete(name);
        variables.set(name, word.slice(equals + 1));
      }
    }
  }
  for (const [name, value] of variables) writer.set("Environment", `${name}=${iniQuote(value)}`);
  return variables;
}

function convertCommand(
  writer: UnitWriter,
  unit: SystemdUnit,
  environment: ReadonlyMap<string, string>,
  fileName: string,
  hasEnvironmentFile: boolean,
): void {
  const [first, ...more] = listValues(unit, "Service", "ExecStart");
  writer.done(
    ...unit.entries.filter((e) => e.section === "Service" && e.key === "ExecStart" && e.value === ""),
  );
  if (!first) {
    writer.header.push("No ExecStart=: this unit runs no command; save it as NAME.target.");
    return;
  }
  writer.done(first);
  try {
    const { argv, notes } = convertExecStart(first.value, environment, fileName, hasEnvironmentFile);
    const line = argv.map((word) => quote(word)).join(" ");
    splitCommandLine(line);
    writer.set("Command", `command=${iniQuote(line)}`);
    writer.header.push(...notes);
  } catch (error) {
    writer.fail(unit, first, `cannot convert ExecStart=: ${errorMessage(error)}`);
  }
  for (const entry of more) {
    writer.skip(
      entry,
      "a task runs one command: only the first ExecStart= was converted; chain more with units",
    );
  }
}

function convertAccounts(writer: UnitWriter, unit: SystemdUnit): void {
  for (const key of ["User", "Group"]) {
    const entry = lastValue(unit, "Service", key);
    if (!entry) continue;
    writer.done(...unit.entries.filter((e) => e.section === "Service" && e.key === key));
    if (ACCOUNT.test(entry.value)) writer.set("Service", `${key}=${entry.value}`);
    else writer.skip(entry, `expected a ${key.toLowerCase()} name or numeric id`);
  }
}

function convertWorkingDirectory(writer: UnitWriter, unit: SystemdUnit): void {
  const entry = lastValue(unit, "Service", "WorkingDirectory");
  if (!entry) return;
  writer.done(...unit.entries.filter((e) => e.section === "Service" && e.key === "WorkingDirectory"));
  const optional = entry.value.startsWith("-");
  const dir = optional ? entry.value.slice(1) : entry.value;
  if (dir.startsWith("~") || dir.includes("%")) {
    writer.skip(entry, "home directories and specifiers are not expanded: write the directory itself");
    return;
  }
  writer.set("Service", `WorkingDirectory=${dir}`);
  if (optional) writer.header.push("WorkingDirectory= lost its '-' prefix: the directory must exist.");
}

function convertLimits(writer: UnitWriter, unit: SystemdUnit, type: string | undefined): void {
  const runtime = lastValue(unit, "Service", "RuntimeMaxSec");
  const startTimeout = lastValue(unit, "Service", "TimeoutStartSec");
  // For Type=oneshot systemd limits the whole run with TimeoutStartSec=; RuntimeMaxSec= does nothing.
  const limit = runtime ?? (type === "oneshot" ? startTimeout : undefined);
  if (limit) {
    writer.done(limit);
    const ms = timeSpan(writer, unit, limit);
    if (ms !== null) writer.set("Service", `MaxTime=${ms === undefined ? "infinity" : formatTimeSpan(ms)}`);
  }
  const memory = lastValue(unit, "Service", "MemoryMax") ?? lastValue(unit, "Service", "MemoryLimit");
  if (memory) {
    writer.done(memory);
    if (SIZE.test(memory.value)) writer.set("Service", `LimitMem=${memory.value}`);
    else
      writer.skip(memory, "expected a size such as 512M or 8G, or infinity; percentages are not supported");
  }
}

/** The entries of a key in [Service], all marked handled; the last non-empty one, if any. */
function serviceKey(writer: UnitWriter, unit: SystemdUnit, key: string): SystemdEntry | undefined {
  const entry = lastValue(unit, "Service", key);
  writer.done(...unit.entries.filter((e) => e.section === "Service" && e.key === key && e !== entry));
  if (entry) writer.done(entry);
  return entry;
}

/** TasksMax=, CPUQuota= and PrivateNetwork=: what the sidecar's jail enforces. */
function convertJail(writer: UnitWriter, unit: SystemdUnit): void {
  const tasks = serviceKey(writer, unit, "TasksMax");
  if (tasks) {
    const count = /^\d+$/.test(tasks.value) ? Number(tasks.value) : undefined;
    if (tasks.value === "infinity" || (count !== undefined && count >= 1 && count <= PIDS_INFINITY)) {
      writer.set("Service", `LimitPids=${tasks.value}`);
    } else {
      writer.skip(
        tasks,
        tasks.value.endsWith("%")
          ? "LimitPids= is a number of processes: percentages of the host's pid limit are not supported"
          : `LimitPids= takes a number of processes from 1 to ${PIDS_INFINITY}, or infinity`,
      );
    }
  }
  const quota = serviceKey(writer, unit, "CPUQuota");
  if (quota) {
    const percent = /^(\d+)%$/.exec(quota.value);
    const value = percent ? Number(percent[1]) : undefined;
    if (value !== undefined && value >= 1 && value <= MAX_CPU_PERCENT) {
      writer.set("Service", `LimitCPU=${value}%`);
    } else {
      writer.skip(quota, `LimitCPU= takes a whole percentage of one CPU, from 1% to ${MAX_CPU_PERCENT}%`);
    }
  }
  const network = serviceKey(writer, unit, "PrivateNetwork");
  if (network) {
    try {
      writer.set("Service", `PrivateNetwork=${parseBoolean(network.value) ? "yes" : "no"}`);
    } catch {
      writer.skip(network, "expected a boolean such as yes or no");
    }
  }
}

function convertRestart(writer: UnitWriter, unit: SystemdUnit): void {
  const restart = lastValue(unit, "Service", "Restart");
  const burst = lastValue(unit, "Unit", "StartLimitBurst") ?? lastValue(unit, "Service", "StartLimitBurst");
  if (restart) {
    writer.done(restart);
    if (restart.value === "no") writer.set("Service", "Restart=never");
    else if (RESTART_ON_FAILURE.has(restart.value)) {
      const count = burst && /^\d+$/.test(burst.value) ? burst.value : "on-failure";
      writer.done(burst);
      writer.set("Service", `Restart=${count}`);
      if (restart.value !== "on-failure") {
        writer.header.push(
          `Restart=${restart.value} became Restart=${count}: a task is retried only when it fails.`,
        );
      }
    } else writer.skip(restart, "a task is retried only when it fails");
  }
  const restartSec = lastValue(unit, "Service", "RestartSec");
  if (restartSec) {
    writer.done(restartSec);
    const ms = timeSpan(writer, unit, restartSec);
    if (ms !== null && ms !== undefined) writer.set("Service", `RestartSec=${formatTimeSpan(ms)}`);
  }
}

/** A time span in ms, undefined for infinity, null (reported) when it cannot be read. */
function timeSpan(writer: UnitWriter, unit: SystemdUnit, entry: SystemdEntry): number | undefined | null {
  try {
    return parseTimeSpanMs(entry.value);
  } catch (error) {
    writer.fail(unit, entry, errorMessage(error));
    return null;
  }
}

/** A cron= that fires every `ms`, when `ms` divides the minute, the hour or the day (or is a week). */
export function everyAsCron(ms: number): string | undefined {
  if (ms <= 0 || ms % 1000 !== 0) return undefined;
  const seconds = ms / 1000;
  if (seconds < 60) return 60 % seconds === 0 ? `*/${seconds} * * * * *` : undefined;
  const minutes = seconds / 60;
  if (!Number.isInteger(minutes)) return undefined;
  if (minutes < 60) {
    if (minutes === 1) return "* * * * *";
    return 60 % minutes === 0 ? `*/${minutes} * * * *` : undefined;
  }
  const hours = minutes / 60;
  if (!Number.isInteger(hours)) return undefined;
  if (hours === 1) return "0 * * * *";
  if (hours < 24) return 24 % hours === 0 ? `0 */${hours} * * *` : undefined;
  if (hours === 24) return "0 0 * * *";
  return hours === 168 ? "0 0 * * 1" : undefined;
}

function convertTimer(writer: UnitWriter, unit: SystemdUnit, serviceFileName: string): void {
  for (const entry of listValues(unit, "Unit", "Description")) {
    writer.done(entry);
    writer.header.push(`Timer: ${entry.value}`);
  }
  const calendars = listValues(unit, "Timer", "OnCalendar");
  writer.done(...unit.entries.filter((e) => e.section === "Timer" && e.key === "OnCalendar"));
  const [calendar, ...more] = calendars;
  for (const entry of more) {
    writer.fail(
      unit,
      entry,
      "a timer with several OnCalendar= has no single cron=: make a unit for each schedule",
    );
  }
  let scheduled = false;
  if (calendar) {
    try {
      const { cron, timezone } = calendarToSchedule(calendar.value);
      writer.set("RunIf", `cron=${iniQuote(cron)}`);
      if (timezone !== undefined) writer.set("RunIf", `TimeZone=${timezone}`);
      else if (cron.split(" ")[1] !== "*") {
        writer.header.push(
          `OnCalendar= ran in the host's time zone; cron= runs in UTC unless TimeZone= is set (e.g. TimeZone=Europe/Berlin).`,
        );
      }
      scheduled = true;
    } catch (error) {
      writer.fail(unit, calendar, errorMessage(error));
    }
  }
  const interval =
    lastValue(unit, "Timer", "OnUnitActiveSec") ?? lastValue(unit, "Timer", "OnUnitInactiveSec");
  if (interval && !calendar) {
    writer.done(interval);
    const ms = timeSpan(writer, unit, interval);
    const cron = ms ? everyAsCron(ms) : undefined;
    if (ms === undefined || ms === 0) writer.skip(interval, "expected a time span above 0");
    else if (ms !== null && cron === undefined) {
      writer.skip(
        interval,
        `a unit repeats on cron=, and every ${formatTimeSpan(ms)} is not a step of the clock: ` +
          'write the cron= closest to it, e.g. cron="*/10 * * * *"',
      );
    } else if (cron !== undefined) {
      writer.set("RunIf", `cron=${iniQuote(cron)}`);
      writer.header.push(
        `${interval.key}=${interval.value} became cron="${cron}": it fires on the clock, not after the last run.`,
      );
      scheduled = true;
    }
  } else if (interval) {
    writer.skip(interval, "the timer also has OnCalendar=, which became cron=; a unit has one schedule");
  }
  // systemd runs a time missed while the host was off only with Persistent=true; a unit's default
  // is CatchUp=latest, so the import says which.
  const persistent = lastValue(unit, "Timer", "Persistent");
  let catchUp = false;
  if (persistent && scheduled) {
    try {
      catchUp = parseBoolean(persistent.value);
      writer.done(persistent);
    } catch {
      writer.skip(persistent, "expected a boolean such as yes or no");
    }
  }
  if (scheduled) writer.set("RunIf", `CatchUp=${catchUp ? "latest" : "skip"}`);
  const delay = lastValue(unit, "Timer", "RandomizedDelaySec");
  if (delay && scheduled) {
    writer.done(delay);
    const ms = timeSpan(writer, unit, delay);
    if (ms !== null && ms !== undefined && ms > 0) writer.set("RunIf", `Jitter=${formatTimeSpan(ms)}`);
    else if (ms !== null) writer.skip(delay, "expected a time span above 0");
  }
  const boot = ["OnBootSec", "OnStartupSec", "OnActiveSec"];
  for (const entry of unit.entries.filter((e) => e.section === "Timer" && boot.includes(e.key))) {
    writer.skip(entry, "Taskframe has no boot trigger: a unit first fires when its run starts");
  }
  const target = lastValue(unit, "Timer", "Unit");
  if (target && target.value === serviceFileName) writer.done(target);
  writer.skipTheRest(unit, {
    Install: "a Taskframe unit with [RunIf] fires on its own; there is nothing to enable",
  });
}
