import { readFile } from "node:fs/promises";

/**
 * Case-name patterns, shared by --run, --skip and known-failing files:
 * `*` matches within one name segment, `**` across segments.
 */
export function matcher(patterns: readonly string[]): (name: string) => boolean {
  const regexes = patterns.map(
    (pattern) =>
      new RegExp(
        `^${pattern
          .split("**")
          .map((part) =>
            part
              .split("*")
              .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
              .join("[^/]*"),
          )
          .join(".*")}$`,
      ),
  );
  return (name) => regexes.some((r) => r.test(name));
}

/** A known-failing list: one pattern per line, `#` comments; a missing file is an empty list. */
export async function readPatternFile(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  return text
    .split("\n")
    .map((line) => line.replace(/#.*/, "").trim())
    .filter(Boolean);
}
