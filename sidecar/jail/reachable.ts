import { statSync } from "node:fs";
import { dirname } from "node:path";
import type { Account } from "./accounts.js";

/**
 * The first directory on the way to `path` that `account` may not pass
 * (no search permission for it), or undefined when it can reach `path`.
 * bubblewrap binds paths as the task's account, so an unreachable working
 * directory would only fail inside bwrap, with a terse message.
 */
export function blockingDirectory(path: string, account: Account): { dir: string; mode: number } | undefined {
  const chain: string[] = [];
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    chain.unshift(dir);
    if (dir === dirname(dir)) break;
  }
  for (const dir of [...chain, path]) {
    let stat: ReturnType<typeof statSync>;
    try {
      stat = statSync(dir);
    } catch {
      return undefined; // missing: the spawn reports it
    }
    if (!stat.isDirectory()) continue;
    const bit =
      stat.uid === account.uid
        ? 0o100
        : account.groups.includes(stat.gid) || stat.gid === account.gid
          ? 0o010
          : 0o001;
    if ((stat.mode & bit) === 0) return { dir, mode: stat.mode & 0o7777 };
  }
  return undefined;
}
