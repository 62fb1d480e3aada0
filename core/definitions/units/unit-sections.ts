import type { IniEntry, IniPosition, IniSection } from "./ini.js";
import { setOwn } from "./set-own.js";
import { NAMED_ENTRY_SECTIONS } from "./unit-schema.js";

/** A section as the schema sees it: every occurrence of its header merged, in file order. */
export interface MergedSection extends IniPosition {
  entries: IniEntry[];
}

/** Entries grouped as the schema expects: by section, then by key (except named-entry sections). */
export type SchemaInput = { [section: string]: IniEntry[] | Record<string, IniEntry[]> };

/** systemd's rule: sections and keys starting with "X-" are the user's own and are ignored. */
const isExtension = (name: string): boolean => name.startsWith("X-");

export function mergeSections(sections: readonly IniSection[]): Map<string, MergedSection> {
  const merged = new Map<string, MergedSection>();
  // Sections written more than once, whose entries are a copy that later occurrences are added to.
  let copied: Set<MergedSection> | undefined;
  for (const section of sections) {
    if (isExtension(section.name)) continue;
    const entries = section.entries.some((entry) => isExtension(entry.key))
      ? section.entries.filter((entry) => !isExtension(entry.key))
      : section.entries;
    const earlier = merged.get(section.name);
    if (!earlier) {
      merged.set(section.name, { line: section.line, column: section.column, entries });
      continue;
    }
    copied ??= new Set();
    if (!copied.has(earlier)) {
      earlier.entries = [...earlier.entries];
      copied.add(earlier);
    }
    for (const entry of entries) earlier.entries.push(entry);
  }
  return merged;
}

/** The schema's input: entries by section, then by key (named-entry sections keep their list). */
export function schemaInput(sections: ReadonlyMap<string, MergedSection>): SchemaInput {
  const input: SchemaInput = {};
  for (const [name, section] of sections) {
    if (NAMED_ENTRY_SECTIONS.has(name)) {
      setOwn<SchemaInput[string]>(input, name, section.entries);
      continue;
    }
    const byKey: Record<string, IniEntry[]> = {};
    for (const entry of section.entries) {
      const list = Object.hasOwn(byKey, entry.key) ? byKey[entry.key] : undefined;
      if (list) list.push(entry);
      else setOwn(byKey, entry.key, [entry]);
    }
    setOwn<SchemaInput[string]>(input, name, byKey);
  }
  return input;
}
