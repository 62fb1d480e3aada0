/**
 * The files that describe an installed set inside its directory: `.complete`,
 * written last, which marks the set as usable and says how to expose it, and
 * `last-used`, whose mtime is refreshed on every use for LRU eviction.
 */
import { chmod, readFile, rename, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";

export const COMPLETE_MARKER = ".complete";
export const LAST_USED = "last-used";

export interface SetManifest {
  key: string;
  /** Bytes of the set's files, counted when it was installed. */
  bytes: number;
  installedAt: string;
  /** What the set holds, for people; no URLs, as the file is readable by every task. */
  description: string;
  env: Record<string, string>;
  pathPrepend: string[];
  readOnlyPaths: string[];
}

/** The manifest of a complete set; undefined if the set is absent or incomplete. */
export async function readManifest(setDir: string): Promise<SetManifest | undefined> {
  let text: string;
  try {
    text = await readFile(join(setDir, COMPLETE_MARKER), "utf8");
  } catch {
    return undefined;
  }
  try {
    const manifest = JSON.parse(text) as SetManifest;
    if (typeof manifest.key !== "string" || typeof manifest.bytes !== "number") return undefined;
    return manifest;
  } catch {
    // a torn write cannot happen (rename), but a hand-edited file can
    return undefined;
  }
}

/** Written to a temporary name, then renamed: the marker appears whole or not at all. */
export async function writeManifest(setDir: string, manifest: SetManifest): Promise<void> {
  const temporary = join(setDir, `${COMPLETE_MARKER}.tmp`);
  await writeFile(temporary, `${JSON.stringify(manifest, null, 2)}\n`);
  await chmod(temporary, 0o644);
  await rename(temporary, join(setDir, COMPLETE_MARKER));
}

export async function touchLastUsed(setDir: string): Promise<void> {
  const path = join(setDir, LAST_USED);
  const now = new Date();
  try {
    await utimes(path, now, now);
  } catch {
    await writeFile(path, "");
    await chmod(path, 0o644);
  }
}

/** When the set was last used (ms since the epoch); 0 if never recorded. */
export async function lastUsedMs(setDir: string): Promise<number> {
  return (await stat(join(setDir, LAST_USED)).catch(() => undefined))?.mtimeMs ?? 0;
}
