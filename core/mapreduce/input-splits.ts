import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { InputRange } from "./descriptor.js";

/** Bytes per map partition when the job does not say how many partitions. */
export const DEFAULT_PARTITION_BYTES = 64 * 1024 * 1024;

/** The regular files of `path` (itself, or every file under it, dot-files left out), in name order. */
export async function inputFiles(path: string): Promise<{ path: string; size: number }[]> {
  const info = await stat(path);
  if (info.isFile()) return [{ path, size: info.size }];
  if (!info.isDirectory()) throw new Error(`${path} is neither a file nor a directory`);
  const files: { path: string; size: number }[] = [];
  const entries = await readdir(path, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    const child = join(path, entry.name);
    if (entry.isDirectory()) files.push(...(await inputFiles(child)));
    else if (entry.isFile()) files.push({ path: child, size: (await stat(child)).size });
  }
  return files;
}

/**
 * Cuts the files into `partitions` runs of byte ranges of about equal size
 * (default: one per 64 MiB). Cuts fall anywhere: a range owns the lines that
 * begin in it (line-ranges.ts), so nothing is read here.
 */
export function splitByBytes(
  files: readonly { path: string; size: number }[],
  partitions?: number,
): InputRange[][] {
  const total = files.reduce((sum, file) => sum + file.size, 0);
  const count = partitions ?? Math.max(1, Math.ceil(total / DEFAULT_PARTITION_BYTES));
  const splits: InputRange[][] = Array.from({ length: count }, () => []);
  let offset = 0; // over all files, end to end
  for (const file of files) {
    let start = 0;
    while (start < file.size) {
      const partition = Math.min(count - 1, Math.floor(((offset + start) * count) / total));
      const partitionEnd = Math.ceil(((partition + 1) * total) / count);
      const end = Math.min(file.size, partitionEnd - offset);
      splits[partition]!.push({ path: file.path, start, end: Math.max(end, start + 1) });
      start = Math.max(end, start + 1);
    }
    offset += file.size;
  }
  return splits;
}

/** `keys` in `partitions` contiguous groups of about equal length (default: one key each). */
export function splitKeys(keys: readonly string[], partitions?: number): string[][] {
  const count = Math.min(keys.length, partitions ?? keys.length);
  return Array.from({ length: count }, (_, p) =>
    keys.slice(Math.floor((p * keys.length) / count), Math.floor(((p + 1) * keys.length) / count)),
  );
}
