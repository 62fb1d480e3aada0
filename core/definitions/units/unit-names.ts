import { TASK_NAME } from "../pipeline-schema.js";
import { closestMatch } from "../suggest.js";
import { ValueProblem } from "./unit-values.js";

export type UnitKind = "task" | "service" | "target";

/** The order in which a name without extension is looked up. */
const EXTENSIONS = [".task", ".service", ".target"] as const;
const LIST_UNITS_UP_TO = 10;

/** `pandoc.task` -> "task"; undefined for files that are not units. */
export function unitKindOf(fileName: string): UnitKind | undefined {
  if (fileName.endsWith(".task")) return "task";
  if (fileName.endsWith(".service")) return "service";
  if (fileName.endsWith(".target")) return "target";
  return undefined;
}

/** The task a unit runs as: its file name without extension (`libpng.service` -> `libpng`). */
export function taskNameOf(fileName: string): string {
  const kind = unitKindOf(fileName);
  return kind === undefined ? fileName : fileName.slice(0, -(kind.length + 1));
}

export function unitFileNameProblem(fileName: string): string | undefined {
  const name = taskNameOf(fileName);
  if (TASK_NAME.test(name)) return undefined;
  return (
    `invalid unit name ${JSON.stringify(fileName)}: the part before the extension is the task's name, ` +
    "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
  );
}

/** Checks how a reference is written (`libpng.service`, `libjpeg`); whether it exists is checked later. */
export function parseUnitReference(word: string): string {
  if (word.includes("/")) {
    throw new ValueProblem(
      `expected a unit's file name, got ${JSON.stringify(word)}: units name units in their own directory`,
    );
  }
  if (!TASK_NAME.test(taskNameOf(word))) {
    throw new ValueProblem(`expected a unit name such as "libpng.service", got ${JSON.stringify(word)}`);
  }
  return word;
}

/**
 * The file name a reference means: itself if it has a unit extension, else the first of
 * `NAME.task`, `NAME.service`, `NAME.target` that exists.
 */
export function resolveReference(written: string, exists: (fileName: string) => boolean): string | undefined {
  if (unitKindOf(written) !== undefined) return exists(written) ? written : undefined;
  for (const extension of EXTENSIONS) {
    if (exists(written + extension)) return written + extension;
  }
  return undefined;
}

/** "no unit named ...", with the closest name and, in small directories, every name. */
export function unknownUnitProblem(
  written: string,
  fileNames: readonly string[],
  where: string,
  builtins: readonly string[] = [],
): string {
  let problem = `no unit named ${JSON.stringify(written)} in ${where}`;
  const bare = unitKindOf(written) === undefined;
  const names = [...fileNames, ...builtins];
  const suggestion = closestMatch(written, bare ? names.map(taskNameOf) : names);
  if (suggestion !== undefined) {
    const full = bare ? resolveReference(suggestion, (name) => names.includes(name)) : suggestion;
    problem += `; did you mean '${full ?? suggestion}'?`;
  }
  if (fileNames.length <= LIST_UNITS_UP_TO) {
    problem += fileNames.length === 0 ? " (it has none)" : ` (units there: ${fileNames.join(", ")})`;
  }
  return problem;
}
