import type { ConditionModeName, ScheduleSettings } from "../schedule-values.js";
import type { ArtifactPin } from "./jail-settings.js";
import type { UnitFields } from "./unit-fields.js";
import type { UnitKind } from "./unit-names.js";

/** A `Requires=`/`After=`/`Wants=` entry as written, and where. */
export interface UnitReference {
  written: string;
  line: number;
  column: number;
  /** The unit file it names, once the catalogue has been checked. */
  unit?: string;
}

/** `[MapReduce]` as written (commands resolved like `command=`), and where its header is. */
export type MapReduceSettings = NonNullable<UnitFields["MapReduce"]> & { line: number; column: number };

/**
 * The `[RunIf]` settings of a unit's schedule besides its trigger (cron=, or Requires= with
 * Interval=); each is unset when the unit does not say, so that the defaults are the schedule's.
 * `startMs` and `endMs` are `Start=` and `End=` read in `TimeZone=`.
 */
export interface UnitScheduleSettings extends ScheduleSettings {
  /** `Timeout=` of each evaluation of the condition. */
  conditionTimeoutMs?: number;
  conditionMode?: ConditionModeName;
}

/** A command and its arguments, as a TaskSpec `Check` or the task's own command. */
export interface CommandTemplate {
  name: string;
  /** Absolute, or a bare name looked up on PATH. */
  command: string;
  args: string[];
}

/** Everything of a unit's TaskSpec except `needs` and `after`; fields as in spec.proto. */
export interface TaskTemplate {
  name: string;
  /** Undefined for a [MapReduce] unit, which has no command of its own. */
  command?: string;
  args: string[];
  env: Record<string, string>;
  /** Absolute. */
  cwd: string;
  retries: number;
  retryIntervalMs: number;
  /** Exit codes that end the task at once, retries left or not. */
  nonRetryableExitCodes: number[];
  /** 0: no limit. */
  timeoutMs: number;
  memoryBytes: bigint;
  /** The size of the task's private /tmp; 0: the pool's default. */
  diskBytes: bigint;
  /** 0: the pool's default. */
  pids: number;
  /** Thousandths of a CPU; 0: no quota. */
  cpuMillis: number;
  privateNetwork: boolean;
  /** "": the pool's profile; else "standard" or "strict". */
  jail: string;
  checks: CommandTemplate[];
  condition?: CommandTemplate;
  user: string;
  group: string;
  install?: { pip: string[]; npm: string[]; apt: string[]; from: string; artifacts: ArtifactPin[] };
  /** `file:line`. */
  definedAt: string;
}

/** A unit ready to become a task of a run. */
export interface CompiledUnit {
  /** `pandoc.task`: how other units name it. */
  fileName: string;
  /** The path used in messages. */
  file: string;
  /** The absolute directory relative paths in the unit resolve against. */
  dir: string;
  /** The task's name: the file name without extension. */
  name: string;
  kind: UnitKind;
  builtin: boolean;
  requires: UnitReference[];
  after: UnitReference[];
  wants: UnitReference[];
  /**
   * The task it runs, but for `needs` and `after`, which depend on which units are in the run.
   * Plain data (`taskSpecOf` makes the TaskSpec), so that large catalogues stay cheap to hold.
   */
  task: TaskTemplate;
  /**
   * `[RunIf] cron=` and `Interval=` (ms), for the scheduler; not part of the TaskSpec. The
   * condition (`Requires=`) is the task's `condition`.
   */
  cron?: string;
  intervalMs?: number;
  /** The other settings of `[RunIf]`, when the unit has any. */
  schedule?: UnitScheduleSettings;
  mapReduce?: MapReduceSettings;
}
