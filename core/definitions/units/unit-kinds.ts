import type { IniEntry, IniPosition } from "./ini.js";
import type { UnitKind } from "./unit-names.js";
import type { MergedSection } from "./unit-sections.js";

const START: IniPosition = { line: 1, column: 1 };

type Report = (position: IniPosition, path: string | undefined, problem: string) => void;

/** What a kind of unit may have: a target checks and runs no command; tasks and services run one. */
export function checkKind(kind: UnitKind, sections: ReadonlyMap<string, MergedSection>, at: Report): void {
  if (kind === "target") {
    for (const name of ["Command", "Args", "MapReduce"]) {
      const section = sections.get(name);
      if (section) {
        at(
          section,
          name,
          `a .target runs no command: it is done when its [Checks] pass; to run a command, ` +
            "name the file NAME.task or NAME.service",
        );
      }
    }
  } else {
    const command = sections.get("Command");
    const mapReduce = sections.get("MapReduce");
    const args = sections.get("Args");
    if (!command && !mapReduce) {
      at(START, "Command", `a .${kind} needs a [Command] section with command=...; only a .target has none`);
    }
    if (command && mapReduce) at(mapReduce, "MapReduce", "a unit has [Command] or [MapReduce], not both");
    if (args && !command) {
      at(args, "Args", "[Args] are the arguments of [Command] command=, and this unit has no [Command]");
    }
  }
  checkRunIfKeys(sections.get("RunIf")?.entries ?? [], at);
}

/** What each setting of a schedule is, for saying that it needs a schedule. */
const POLICY_KEYS: Readonly<Record<string, string>> = {
  Overlap: "what a firing does while the previous run is still going",
  CatchUp: "what happens to the firings missed while no hub ran",
  Jitter: "how long each firing may wait",
  Start: "when the schedule begins",
  End: "when the schedule ends",
};

/** Which `[RunIf]` keys go together: a trigger (cron= or Requires=) and the settings that need it. */
function checkRunIfKeys(entries: readonly IniEntry[], at: Report): void {
  if (entries.length === 0) return;
  const first = (key: string): IniEntry | undefined => entries.find((entry) => entry.key === key);
  const cron = first("cron");
  const interval = first("Interval");
  const requires = first("Requires");
  if (interval && cron) {
    at(interval, "RunIf.Interval", "cron= and Interval= both say when to run; keep one");
  } else if (interval && !requires) {
    at(
      interval,
      "RunIf.Interval",
      "Interval= says how often to evaluate Requires=, and this unit has no Requires=; " +
        'for a periodic run use cron=, e.g. cron="*/5 * * * *"',
    );
  }
  const timeZone = first("TimeZone");
  if (timeZone && !cron) {
    at(
      timeZone,
      "RunIf.TimeZone",
      "TimeZone= is the time zone of cron=, and this unit has no cron=" +
        (requires ? "; Start= and End= of a condition take an offset instead (2026-12-01T08:00+01:00)" : ""),
    );
  }
  const conditionKeys: Readonly<Record<string, string>> = {
    Timeout: "limits each evaluation of Requires=",
    Mode: "says when Requires= holding fires the unit",
  };
  for (const [key, what] of Object.entries(conditionKeys)) {
    const entry = first(key);
    if (!entry) continue;
    if (!requires) at(entry, `RunIf.${key}`, `${key}= ${what}, and this unit has no Requires=`);
    else if (cron) {
      at(
        entry,
        `RunIf.${key}`,
        `${key}= ${what} on a condition schedule, and this unit fires on cron= instead ` +
          `(Requires= is then checked when the run starts), so ${key}= would do nothing`,
      );
    }
  }
  if (cron || requires || interval) return;
  for (const [key, what] of Object.entries(POLICY_KEYS)) {
    const entry = first(key);
    if (!entry) continue;
    at(
      entry,
      `RunIf.${key}`,
      `${key}= says ${what}, and this unit has no schedule: add cron= (e.g. cron="0 2 * * *") ` +
        "or a condition to evaluate, Requires=",
    );
  }
}
