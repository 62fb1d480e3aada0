import { z } from "zod";
import type { IniEntry } from "./ini.js";
import { type Field, isField, UNIT_FIELDS } from "./unit-fields.js";

/**
 * The shape of a unit, derived from UNIT_FIELDS: which sections and keys exist and which keys are
 * required. The input is the unit's entries grouped by section and key; values are read by the
 * fields themselves, after this check.
 */
const entries = z.custom<IniEntry[]>();

function keySchema(field: Field<unknown>) {
  const { missing } = field;
  return missing === undefined
    ? entries.optional()
    : z.custom<IniEntry[]>((input) => input !== undefined, { error: () => missing });
}

export const unitSchema = z.strictObject(
  Object.fromEntries(
    Object.entries(UNIT_FIELDS).map(([section, spec]) => [
      section,
      isField(spec)
        ? entries.optional()
        : z
            .strictObject(
              Object.fromEntries(
                Object.entries(spec as Record<string, Field<unknown>>).map(([key, field]) => [
                  key,
                  keySchema(field),
                ]),
              ),
            )
            .optional(),
    ]),
  ),
);

/** Section names, in the order they are documented. */
export const SECTIONS: readonly string[] = Object.keys(UNIT_FIELDS);

/** Sections whose keys are chosen by the user; the others have a fixed set of them. */
export const NAMED_ENTRY_SECTIONS: ReadonlySet<string> = new Set(
  Object.entries(UNIT_FIELDS).flatMap(([section, spec]) => (isField(spec) ? [section] : [])),
);

/** The keys of each section that has a fixed set of them. */
export const SECTION_KEYS: ReadonlyMap<string, readonly string[]> = new Map(
  Object.entries(UNIT_FIELDS).flatMap(([section, spec]) =>
    isField(spec) ? [] : [[section, Object.keys(spec)] as const],
  ),
);

/** For systemd's sandboxing keys: the jail sandboxes every task. */
const JAIL_ADVICE = "every task runs in its pool's jail; to ask for a stricter one, write Jail=strict";

/** Advice for keys that systemd users are likely to try. */
export const KEY_HINTS: ReadonlyMap<string, string> = new Map(
  Object.entries({
    "Service.ExecStart": 'the command goes in [Command] command="..." (arguments in [Args] args="...")',
    "Service.Environment": "variables go in an [Environment] section, one KEY=value per line",
    "Service.Requires": "dependencies go in [Dependencies]",
    "Service.After": "dependencies go in [Dependencies]",
    "Service.TimeoutSec": "the time limit is MaxTime=",
    "Service.RuntimeMaxSec": "the time limit is MaxTime=",
    "Service.MemoryMax": "the memory limit is LimitMem=",
    "Service.MemoryLimit": "the memory limit is LimitMem=",
    "Service.TasksMax": "the process limit is LimitPids=",
    "Service.LimitNPROC":
      "the process limit is LimitPids= (processes and threads of the task, not of its user)",
    "Service.CPUQuota": "the CPU limit is LimitCPU= (a percentage of one CPU, as CPUQuota=)",
    "Service.PrivateTmp": "every jailed task has a private /tmp; its size is LimitDisk=",
    "Service.ProtectSystem": JAIL_ADVICE,
    "Service.ProtectHome": JAIL_ADVICE,
    "Service.NoNewPrivileges": JAIL_ADVICE,
    "Service.DynamicUser": JAIL_ADVICE,
    "Service.IPAddressDeny": "to cut a task off the network, write PrivateNetwork=yes",
    "RunIf.OnCalendar":
      'a schedule is cron= (e.g. cron="0 2 * * *"); `task import-systemd` converts a timer\'s OnCalendar=',
    "RunIf.OnUnitActiveSec": 'a periodic run is cron=, e.g. cron="*/15 * * * *"',
    "RunIf.Persistent":
      "what happens to missed firings is CatchUp= (skip, latest, backfill or backfill(max=N))",
    "RunIf.RandomizedDelaySec": "a random delay of each firing is Jitter=",
    "RunIf.TZ": "the time zone of cron= is TimeZone= (an IANA name such as Europe/Berlin)",
    "RunIf.Condition": "the condition is Requires=, a command: exit 0 runs the task, exit 1 skips it",
    "Install.WantedBy":
      "[Install] lists what to install before the task runs (pip=, npm=, apt=, From=, Artifact=); to pull this unit in, name it in another unit's Wants=",
  }),
);

export const SECTION_HINTS: ReadonlyMap<string, string> = new Map([
  ["Unit", "Requires=, After= and Wants= go in [Dependencies]"],
  ["Timer", "schedules go in [RunIf] (cron= or Interval=)"],
]);
