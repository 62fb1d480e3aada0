/**
 * Tasks run as unprivileged users and must read what the sidecar installed:
 * every directory becomes 0755, every file readable by all (and executable
 * by all if its owner may execute it). Other mode bits are kept, except
 * setuid, setgid and sticky, which nothing in an install cache should carry.
 */
import { chmod, lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

/** Applies the modes above to `root` and everything under it; returns the bytes of its files. */
export async function makeWorldReadable(root: string): Promise<number> {
  const stats = await lstat(root);
  if (stats.isSymbolicLink()) return 0;
  if (!stats.isDirectory()) {
    const permissions = stats.mode & 0o777;
    const wanted = permissions | 0o444 | (permissions & 0o100 ? 0o111 : 0);
    if ((stats.mode & 0o7777) !== wanted) await chmod(root, wanted);
    return stats.size;
  }
  if ((stats.mode & 0o7777) !== 0o755) await chmod(root, 0o755);
  let bytes = 0;
  for (const name of await readdir(root)) bytes += await makeWorldReadable(join(root, name));
  return bytes;
}

/** The bytes of the files under `root` (symbolic links not followed); 0 if it is gone. */
export async function treeBytes(root: string): Promise<number> {
  let stats: Awaited<ReturnType<typeof lstat>>;
  try {
    stats = await lstat(root);
  } catch {
    return 0;
  }
  if (!stats.isDirectory()) return stats.isSymbolicLink() ? 0 : stats.size;
  let bytes = 0;
  for (const name of await readdir(root).catch(() => [])) bytes += await treeBytes(join(root, name));
  return bytes;
}
