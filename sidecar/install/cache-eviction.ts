/**
 * Keeps the install cache under its size limit by deleting the least recently
 * used complete sets, and removes incomplete sets that no install is working
 * on (left by a crash). A set is only deleted under its lock, so a set that an
 * install or a reuse holds in this or another process is never deleted.
 */
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { tryLockSet } from "./set-lock.js";
import { lastUsedMs, readManifest } from "./set-manifest.js";
import { treeBytes } from "./tree-permissions.js";

const SET_KEY = /^[0-9a-f]{64}$/;

export interface EvictionOptions {
  dir: string;
  maxBytes: number;
  /** Sets never to delete: the one just installed, and those in use in this process. */
  keep: ReadonlySet<string>;
  log: (line: string) => void;
}

/** Returns the keys of the sets it deleted. */
export async function evictLeastRecentlyUsed(options: EvictionOptions): Promise<string[]> {
  const { dir, maxBytes, keep, log } = options;
  const evicted: string[] = [];
  const complete: { key: string; bytes: number; lastUsed: number }[] = [];
  let total = 0;
  const entries = await readdir(dir, { withFileTypes: true });
  for (const entry of entries) {
    if (!entry.isDirectory() || !SET_KEY.test(entry.name)) continue;
    const key = entry.name;
    const setDir = join(dir, key);
    const manifest = await readManifest(setDir);
    if (manifest) {
      total += manifest.bytes;
      complete.push({ key, bytes: manifest.bytes, lastUsed: await lastUsedMs(setDir) });
      continue;
    }
    if (!keep.has(key) && (await deleteUnlessLocked(setDir))) {
      log(`removed incomplete install set ${key.slice(0, 12)} (left by an interrupted install)`);
      continue;
    }
    total += await treeBytes(setDir);
  }
  if (total <= maxBytes) return evicted;

  complete.sort((a, b) => a.lastUsed - b.lastUsed);
  for (const candidate of complete) {
    if (total <= maxBytes) break;
    if (keep.has(candidate.key)) continue;
    if (!(await deleteUnlessLocked(join(dir, candidate.key)))) continue;
    total -= candidate.bytes;
    evicted.push(candidate.key);
    log(
      `evicted install set ${candidate.key.slice(0, 12)} (${candidate.bytes} bytes, last used ${new Date(candidate.lastUsed).toISOString()}) to keep the install cache under ${maxBytes} bytes`,
    );
  }
  if (total > maxBytes) log(`install cache holds ${total} bytes, over its ${maxBytes}: the rest is in use`);
  return evicted;
}

async function deleteUnlessLocked(setDir: string): Promise<boolean> {
  // deleting takes moments: nothing to do if the lock is lost meanwhile
  const release = await tryLockSet(setDir, () => {});
  if (!release) return false;
  try {
    await rm(setDir, { recursive: true, force: true });
  } finally {
    await release();
  }
  return true;
}
