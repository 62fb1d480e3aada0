import type { z } from "zod";
import { formatPath } from "../field-path.js";
import { closestMatch } from "../suggest.js";
import type { IniEntry, IniPosition } from "./ini.js";
import { KEY_HINTS, SECTION_HINTS, SECTION_KEYS, SECTIONS } from "./unit-schema.js";
import type { MergedSection } from "./unit-sections.js";

const START: IniPosition = { line: 1, column: 1 };

export interface PlacedProblem {
  position: IniPosition;
  path: string | undefined;
  message: string;
}

/** Where a schema issue is in the file, and what to say: unknown names get a "did you mean". */
export function placeIssue(
  issue: z.core.$ZodIssue,
  sections: ReadonlyMap<string, MergedSection>,
): PlacedProblem[] {
  const [sectionName, key] = issue.path.map(String);
  if (issue.code === "unrecognized_keys") {
    if (sectionName === undefined)
      return issue.keys.map((unknown) => unknownSectionProblem(unknown, sections));
    const first = new Map<string, IniEntry>();
    for (const entry of sections.get(sectionName)?.entries ?? []) {
      if (!first.has(entry.key)) first.set(entry.key, entry);
    }
    return issue.keys.map((unknown) => unknownKeyProblem(unknown, sectionName, first.get(unknown)));
  }
  const section = sectionName === undefined ? undefined : sections.get(sectionName);
  const path = key === undefined ? sectionName : formatPath([sectionName ?? "", key]);
  return [{ position: section ?? START, path, message: issue.message }];
}

function unknownSectionProblem(name: string, sections: ReadonlyMap<string, MergedSection>): PlacedProblem {
  return {
    position: sections.get(name) ?? START,
    path: formatPath([name]),
    message: unknownMessage(
      `section [${name}]`,
      name,
      SECTIONS,
      SECTION_HINTS.get(name),
      (found) => `[${found}]`,
    ),
  };
}

function unknownKeyProblem(key: string, sectionName: string, entry: IniEntry | undefined): PlacedProblem {
  const path = formatPath([sectionName, key]);
  return {
    position: entry ? { line: entry.line, column: entry.column } : START,
    path,
    message: unknownMessage(
      `key '${key}' in [${sectionName}]`,
      key,
      SECTION_KEYS.get(sectionName) ?? [],
      KEY_HINTS.get(path),
      (found) => `'${found}'`,
    ),
  };
}

function unknownMessage(
  what: string,
  name: string,
  known: readonly string[],
  hint: string | undefined,
  show: (found: string) => string,
): string {
  let message = `unknown ${what}`;
  const suggestion = hint === undefined ? closestMatch(name, known) : undefined;
  if (hint !== undefined) message += `: ${hint}`;
  else if (suggestion !== undefined) message += `; did you mean ${show(suggestion)}?`;
  if (suggestion === undefined || suggestion.toLowerCase() !== name.toLowerCase()) {
    message += ` (expected one of: ${known.join(", ")})`;
  } else {
    message += " (names are case-sensitive)";
  }
  return message;
}
