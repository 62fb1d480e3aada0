import { DefinitionError, DefinitionErrors } from "../../errors.js";

/** Enough to fix a directory in a few passes without a wall of text. */
export const MAX_REPORTED_PROBLEMS = 50;

function byPosition(a: DefinitionError, b: DefinitionError): number {
  const x = a.location;
  const y = b.location;
  if (x.file !== y.file) return x.file < y.file ? -1 : 1;
  return (x.line ?? 0) - (y.line ?? 0) || (x.column ?? 0) - (y.column ?? 0);
}

/**
 * Throws the problems found, if any, ordered by file and position: one as itself, several as
 * DefinitionErrors, at most MAX_REPORTED_PROBLEMS of them and then a "... and N more" note.
 */
export function throwProblems(problems: readonly DefinitionError[], where: string): void {
  const sorted = [...problems].sort(byPosition);
  if (sorted.length <= MAX_REPORTED_PROBLEMS) {
    DefinitionErrors.throwIfAny(sorted);
    return;
  }
  const more = sorted.length - MAX_REPORTED_PROBLEMS;
  const note = new DefinitionError({ file: where }, `... and ${more} more problem${more === 1 ? "" : "s"}`);
  throw new DefinitionErrors([...sorted.slice(0, MAX_REPORTED_PROBLEMS), note]);
}
