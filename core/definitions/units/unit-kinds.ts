import type { IniPosition } from "./ini.js";
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
  const runIf = sections.get("RunIf")?.entries ?? [];
  const interval = runIf.find((entry) => entry.key === "Interval");
  if (interval && runIf.some((entry) => entry.key === "cron")) {
    at(interval, "RunIf.Interval", "cron= and Interval= both say when to run; keep one");
  }
}
