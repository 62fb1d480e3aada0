import { cronScheduleProblem, instantOf } from "../schedule-values.js";
import type { IniEntry, IniPosition } from "./ini.js";
import type { UnitFields } from "./unit-fields.js";
import type { MergedSection } from "./unit-sections.js";

type Report = (position: IniPosition, path: string | undefined, problem: string) => void;

/**
 * The checks of `[RunIf]` that need several values read: cron= in its TimeZone= (as the scheduler
 * reads it), and End= after Start= (both read in TimeZone=). Keys whose value failed are not
 * checked again.
 */
export function checkRunIfValues(
  runIf: UnitFields["RunIf"],
  section: MergedSection | undefined,
  at: Report,
): void {
  if (runIf === undefined || section === undefined) return;
  const first = (key: string): IniEntry | undefined => section.entries.find((entry) => entry.key === key);
  // A TimeZone= that failed has been reported; what depends on it is not checked.
  if (first("TimeZone") && runIf.TimeZone === undefined) return;
  const zone = runIf.TimeZone ?? "UTC";
  const cron = first("cron");
  if (cron && runIf.cron !== undefined) {
    const problem = cronScheduleProblem(runIf.cron, zone);
    if (problem) at(cron.value.start, "RunIf.cron", problem);
  }
  const { Start: start, End: end } = runIf;
  const endEntry = first("End");
  if (start && end && endEntry && instantOf(end, zone) <= instantOf(start, zone)) {
    const startLine = first("Start")?.line;
    at(
      endEntry.value.start,
      "RunIf.End",
      `expected End= after Start= (line ${startLine}), got ${end.text}, which is not after ${start.text}`,
    );
  }
}
