// Two sidecar processes asking for the same set at once: one installs, the other waits and reuses.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, "../..");
const MODULE = pathToFileURL(join(REPO, "sidecar/install/install-cache.ts")).href;

const CHILD = `
const [modulePath, dir, url, sha256] = process.argv.slice(2);
const { InstallCache } = await import(modulePath);
const lines = [];
const cache = new InstallCache({ dir, maxBytes: 1e12, allowApt: false });
const spec = { pip: [], npm: [], apt: [], from: "", artifacts: [{ url, sha256 }] };
const set = await cache.ensure(spec, { cwd: dir, log: (line) => lines.push(line), signal: new AbortController().signal });
process.stdout.write(JSON.stringify({ dir: set.dir, lines }));
`;

let work: string;
let server: Server;
let requests = 0;
const BODY = Buffer.from("#!/bin/sh\necho from another process\n");

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "taskframe-install-processes-"));
  await writeFile(join(work, "child.mjs"), CHILD);
  // slow enough that both processes ask while the first one installs
  server = createServer((_request, response) => {
    requests++;
    const timer = setTimeout(() => response.end(BODY), 2500);
    response.on("close", () => clearTimeout(timer));
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
  await rm(work, { recursive: true, force: true });
});

describe("InstallCache across processes", () => {
  it("installs a set once when two processes ask for it at the same time", async () => {
    const dir = join(work, "cache");
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tool`;
    const sha256 = createHash("sha256").update(BODY).digest("hex");
    const child = () =>
      run(process.execPath, ["--import", "tsx", join(work, "child.mjs"), MODULE, dir, url, sha256], {
        cwd: REPO,
        timeout: 50_000,
      });
    const results = (await Promise.all([child(), child()])).map(
      (result) => JSON.parse(result.stdout) as { dir: string; lines: string[] },
    );
    expect(requests).toBe(1);
    expect(results[1]!.dir).toBe(results[0]!.dir);
    const installers = results.filter((result) => result.lines[0]?.startsWith("installing 1 artifact"));
    const waiters = results.filter((result) =>
      result.lines[0]?.startsWith("waiting for another process installing the same dependencies"),
    );
    expect(installers).toHaveLength(1);
    expect(waiters).toHaveLength(1);
    expect(waiters[0]!.lines.at(-1)).toMatch(/^using installed dependencies \(set \w{12}\): 1 artifact$/);
    expect((await readdir(dir)).sort()).toEqual([results[0]!.dir.split("/").at(-1)]);
  });
});
