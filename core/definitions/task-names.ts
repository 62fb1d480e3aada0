import { parse } from "node:path";

// Leaves room for a "-NNNNNN" suffix within the 128-character limit on task names.
const MAX_BASE_LENGTH = 120;

/** A task name derived from a command: its basename without extension (`./extract.sh` -> `extract`). */
export function nameFromCommand(command: string): string {
  const base = parse(command)
    .name.replace(/[^A-Za-z0-9._-]+/g, "-")
    .replace(/^[^A-Za-z0-9]+/, "")
    .slice(0, MAX_BASE_LENGTH);
  return base === "" ? "step" : base;
}

/** Hands out `base` if it is free, else the first free `base-2`, `base-3`, ... */
export class NameAllocator {
  private readonly nextSuffix = new Map<string, number>();

  /** `taken` holds the explicit names; allocated names are added to it. */
  constructor(private readonly taken: Set<string>) {}

  allocate(base: string): string {
    let name = base;
    let suffix = this.nextSuffix.get(base) ?? 2;
    while (this.taken.has(name)) name = `${base}-${suffix++}`;
    this.nextSuffix.set(base, suffix);
    this.taken.add(name);
    return name;
  }
}
