import { DefinitionError, DefinitionErrors } from "../errors.js";

/** One `Key=Value` of a systemd unit, continuation lines joined. */
export interface SystemdEntry {
  section: string;
  key: string;
  value: string;
  line: number;
}

/** A systemd unit file as written: its entries in file order (a key may repeat). */
export interface SystemdUnit {
  file: string;
  entries: SystemdEntry[];
}

/**
 * Parses a systemd unit file: `[Section]` headers, `Key=Value` lines, lines continued with a
 * trailing backslash, and comment lines starting with `#` or `;` (systemd has no inline comments:
 * a `#` after a value is part of it). Every malformed line is reported.
 */
export function parseSystemdUnit(text: string, file: string): SystemdUnit {
  const lines = (text.startsWith("\uFEFF") ? text.slice(1) : text).split(/\r?\n/);
  const entries: SystemdEntry[] = [];
  const problems: DefinitionError[] = [];
  let section: string | undefined;
  for (let index = 0; index < lines.length; index++) {
    const lineNumber = index + 1;
    const line = lines[index]!.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    if (line.startsWith("[")) {
      const header = /^\[([^\]\s]+)\]$/.exec(line);
      if (!header) {
        problems.push(
          new DefinitionError(
            { file, line: lineNumber, column: 1 },
            "expected a section header such as [Service]",
          ),
        );
        section = undefined;
      } else section = header[1]!;
      continue;
    }
    const equals = line.indexOf("=");
    if (equals <= 0) {
      problems.push(
        new DefinitionError(
          { file, line: lineNumber, column: 1 },
          "expected `Key=Value` or a [Section] header",
        ),
      );
      continue;
    }
    let value = line.slice(equals + 1).trim();
    while (value.endsWith("\\") && index + 1 < lines.length) {
      index++;
      const next = lines[index]!.trim();
      if (next.startsWith("#") || next.startsWith(";")) continue;
      value = `${value.slice(0, -1)} ${next}`.trim();
    }
    if (section === undefined) {
      problems.push(
        new DefinitionError(
          { file, line: lineNumber, column: 1 },
          "expected a [Section] header before the first key",
        ),
      );
      continue;
    }
    entries.push({ section, key: line.slice(0, equals).trim(), value, line: lineNumber });
  }
  DefinitionErrors.throwIfAny(problems);
  return { file, entries };
}

/** Values of a key in order; an empty assignment resets the list, as systemd does. */
export function listValues(unit: SystemdUnit, section: string, key: string): SystemdEntry[] {
  let found: SystemdEntry[] = [];
  for (const entry of unit.entries) {
    if (entry.section !== section || entry.key !== key) continue;
    found = entry.value === "" ? [] : [...found, entry];
  }
  return found;
}

/** The last value of a key set once (systemd: a later assignment wins). */
export function lastValue(unit: SystemdUnit, section: string, key: string): SystemdEntry | undefined {
  return listValues(unit, section, key).at(-1);
}
