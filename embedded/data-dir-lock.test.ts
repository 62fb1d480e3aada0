import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DataDirLock } from "./data-dir-lock.js";

describe("DataDirLock", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "taskframe-lock-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("gives a data directory to one user at a time, naming the holder", async () => {
    const lock = await DataDirLock.acquire(dir);
    await expect(DataDirLock.acquire(dir, 0)).rejects.toThrow(
      `in use by another task process (pid ${process.pid})`,
    );
    lock.release();
    (await DataDirLock.acquire(dir)).release();
  });

  it("waits for the holder to let go", async () => {
    const lock = await DataDirLock.acquire(dir);
    setTimeout(() => lock.release(), 200);
    const second = await DataDirLock.acquire(dir, 5_000);
    second.release();
  });

  it("takes over a lock whose process is gone", async () => {
    const dead = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" }).stdout.trim();
    await writeFile(DataDirLock.lockPath(dir), JSON.stringify({ pid: Number(dead) }));
    expect(DataDirLock.readOwner(dir)).toBeUndefined();
    const lock = await DataDirLock.acquire(dir, 0);
    expect(JSON.parse(await readFile(DataDirLock.lockPath(dir), "utf8"))).toEqual({ pid: process.pid });
    lock.release();
  });

  it("publishes the socket where its owner's hub answers", async () => {
    const lock = await DataDirLock.acquire(dir);
    lock.announce("/run/hub.sock");
    expect(DataDirLock.readOwner(dir)).toEqual({ pid: process.pid, socketPath: "/run/hub.sock" });
    lock.release();
  });
});
