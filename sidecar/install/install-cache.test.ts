import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pathToFileURL } from "node:url";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type InstallSpec, InstallSpecSchema } from "../../core/gen/taskframe/v1/spec_pb.js";
import { defaultInstallCacheDir, InstallCache, InstallError, type InstalledSet } from "./install-cache.js";
import { installSetKey, installSetOf } from "./install-set.js";
import { tryLockSet } from "./set-lock.js";

const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");
const SET_KEY = /^[0-9a-f]{64}$/;

let work: string;
let cacheDir: string;
let server: Server;
let baseUrl: string;
let requests: string[];
const served = new Map<string, { body: Buffer; delayMs: number }>();

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "taskframe-install-"));
  server = createServer((request, response) => {
    requests.push(request.url ?? "");
    const file = served.get(request.url ?? "");
    if (!file) {
      response.writeHead(404).end();
      return;
    }
    const timer = setTimeout(() => response.end(file.body), file.delayMs);
    response.on("close", () => clearTimeout(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(work, { recursive: true, force: true });
});

beforeEach(async () => {
  cacheDir = await mkdtemp(join(work, "cache-"));
  requests = [];
  served.clear();
});

afterEach(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

function spec(fields: MessageInitShape<typeof InstallSpecSchema>): InstallSpec {
  return create(InstallSpecSchema, fields);
}

function context(lines: string[] = [], signal = new AbortController().signal) {
  return { cwd: work, log: (line: string) => lines.push(line), signal };
}

/** A shell script that prints `text`, as an artifact file of its own. */
async function scriptFile(name: string, text: string): Promise<{ path: string; sha256: string }> {
  const path = join(work, name);
  const body = `#!/bin/sh\necho ${JSON.stringify(text)}\n`;
  await writeFile(path, body, { mode: 0o644 });
  return { path, sha256: sha256(body) };
}

function runWith(set: InstalledSet, command: string): string {
  return execFileSync("/bin/sh", ["-c", command], {
    env: { ...process.env, ...set.env, PATH: [...set.pathPrepend, process.env.PATH].join(":") },
    encoding: "utf8",
  }).trim();
}

async function setDirs(): Promise<string[]> {
  return (await readdir(cacheDir)).filter((name) => SET_KEY.test(name));
}

describe("InstallCache", () => {
  it("returns at once for an empty spec, without creating the cache", async () => {
    const dir = join(work, "never-created");
    const cache = new InstallCache({ dir, maxBytes: 1e9, allowApt: false });
    const lines: string[] = [];
    const set = await cache.ensure(spec({ pip: [" "] }), context(lines));
    expect(set).toEqual({ key: "", dir: "", env: {}, pathPrepend: [], readOnlyPaths: [] });
    expect(lines).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });

  it("refuses apt packages unless the pool allows host-wide installs", async () => {
    const cache = new InstallCache({ dir: cacheDir, maxBytes: 1e9, allowApt: false });
    const failure = cache.ensure(spec({ apt: ["jq", "curl"] }), context());
    await expect(failure).rejects.toBeInstanceOf(InstallError);
    await expect(failure).rejects.toThrow(
      "apt packages (curl, jq) need a pool that allows host-wide installs (sidecar --allow-apt)",
    );
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it("installs apt packages host-wide when allowed, non-interactively", async () => {
    const fakeBin = join(work, "fake-apt");
    await mkdir(fakeBin, { recursive: true });
    const record = join(work, "apt-get.args");
    await writeFile(
      join(fakeBin, "apt-get"),
      `#!/bin/sh\necho "$DEBIAN_FRONTEND $*" > ${record}\necho "Setting up $6 ..."\n[ "$6" != broken ] || exit 100\n`,
      { mode: 0o755 },
    );
    const cache = new InstallCache({
      dir: cacheDir,
      maxBytes: 1e9,
      allowApt: true,
      env: { ...process.env, PATH: `${fakeBin}:${process.env.PATH}` },
    });
    const lines: string[] = [];
    const set = await cache.ensure(spec({ apt: ["jq"] }), context(lines));
    expect(await readFile(record, "utf8")).toBe(
      "noninteractive install -y --no-install-recommends -o DPkg::Lock::Timeout=300 jq\n",
    );
    expect(lines).toContain("Setting up jq ...");
    expect(set).toMatchObject({ env: {}, pathPrepend: [], readOnlyPaths: [set.dir] });

    const failure = cache.ensure(spec({ apt: ["broken"] }), context());
    await expect(failure).rejects.toMatchObject({
      name: "InstallError",
      ecosystem: "apt",
      exitCode: 100,
      message:
        "apt: `apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 broken` failed with exit code 100",
    });
  });

  it("unpacks a pinned tarball and installs a pinned binary, both on PATH, readable by all", async () => {
    const tree = join(work, "tree");
    await mkdir(join(tree, "bin"), { recursive: true });
    await writeFile(join(tree, "bin", "hello"), '#!/bin/sh\necho "hello from the tarball"\n', {
      mode: 0o700,
    });
    await writeFile(join(tree, "README"), "read me\n", { mode: 0o600 });
    const tarball = join(work, "hello.tar.gz");
    execFileSync("tar", ["-czf", tarball, "-C", tree, "bin", "README"]);
    const tarballSha = sha256(execFileSync("cat", [tarball]));
    const greet = await scriptFile("greet", "greetings from a binary");

    const cache = new InstallCache({ dir: cacheDir, maxBytes: 1e9, allowApt: false });
    const lines: string[] = [];
    const set = await cache.ensure(
      spec({
        artifacts: [
          { url: tarball, sha256: tarballSha },
          { url: pathToFileURL(greet.path).href, sha256: greet.sha256 },
        ],
      }),
      context(lines),
    );

    const unpacked = join(set.dir, "artifacts", tarballSha.slice(0, 16));
    expect(set.dir).toBe(join(cacheDir, set.key));
    expect(set.pathPrepend).toEqual([join(set.dir, "bin"), join(unpacked, "bin")]);
    expect(set.readOnlyPaths).toEqual([set.dir]);
    expect(runWith(set, "hello && greet")).toBe("hello from the tarball\ngreetings from a binary");
    expect((await stat(set.dir)).mode & 0o7777).toBe(0o755);
    expect((await stat(join(unpacked, "bin"))).mode & 0o7777).toBe(0o755);
    expect((await stat(join(set.dir, "bin", "greet"))).mode & 0o7777).toBe(0o755);
    expect((await stat(join(unpacked, "bin", "hello"))).mode & 0o7777).toBe(0o755);
    expect((await stat(join(unpacked, "README"))).mode & 0o7777).toBe(0o644);
    expect(lines[0]).toBe(`installing 2 artifacts (set ${set.key.slice(0, 12)})`);
    expect(lines.at(-1)).toMatch(
      new RegExp(`^installed set ${set.key.slice(0, 12)} \\(\\d+ bytes\\) in \\d+\\.\\ds$`),
    );
    expect(lines).toContain(`fetching ${tarball}`);

    const again: string[] = [];
    const reordered = spec({
      artifacts: [
        { url: pathToFileURL(greet.path).href, sha256: greet.sha256 },
        { url: tarball, sha256: tarballSha.toUpperCase() },
      ],
    });
    expect(await cache.ensure(reordered, context(again))).toEqual(set);
    expect(again).toEqual([`using installed dependencies (set ${set.key.slice(0, 12)}): 2 artifacts`]);
  });

  it("finds bin/ under a tarball's single top directory, and fetches over http", async () => {
    const tree = join(work, "tool-tree");
    await mkdir(join(tree, "tool-1.0", "bin"), { recursive: true });
    await writeFile(join(tree, "tool-1.0", "bin", "tool"), "#!/bin/sh\necho tool 1.0\n", { mode: 0o755 });
    const tarball = join(work, "tool-1.0.tgz");
    execFileSync("tar", ["-czf", tarball, "-C", tree, "tool-1.0"]);
    const body = execFileSync("cat", [tarball]);
    served.set("/dist/tool-1.0.tgz?token=x", { body, delayMs: 0 });

    const cache = new InstallCache({ dir: cacheDir, maxBytes: 1e9, allowApt: false });
    const set = await cache.ensure(
      spec({ artifacts: [{ url: `${baseUrl}/dist/tool-1.0.tgz?token=x`, sha256: sha256(body) }] }),
      context(),
    );
    expect(set.pathPrepend).toEqual([
      join(set.dir, "artifacts", sha256(body).slice(0, 16), "tool-1.0", "bin"),
    ]);
    expect(runWith(set, "tool")).toBe("tool 1.0");
    expect(requests).toEqual(["/dist/tool-1.0.tgz?token=x"]);
  });

  it("rejects a sha256 mismatch, naming both, and leaves no set behind", async () => {
    const file = await scriptFile("tampered", "not what was pinned");
    const cache = new InstallCache({ dir: cacheDir, maxBytes: 1e9, allowApt: false });
    const lines: string[] = [];
    const wrong = "0".repeat(64);
    const failure = cache.ensure(spec({ artifacts: [{ url: file.path, sha256: wrong }] }), context(lines));
    await expect(failure).rejects.toBeInstanceOf(InstallError);
    await expect(failure).rejects.toThrow(
      `artifact ${file.path}: sha256 mismatch: expected ${wrong}, got ${file.sha256}`,
    );
    expect(lines.at(-1)).toMatch(/^install failed after \d+\.\ds: artifact .* sha256 mismatch/);
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it("reports an HTTP error, an unreachable file and a URL naming no file", async () => {
    const cache = new InstallCache({ dir: cacheDir, maxBytes: 1e9, allowApt: false });
    await expect(
      cache.ensure(spec({ artifacts: [{ url: `${baseUrl}/nothing`, sha256: "1".repeat(64) }] }), context()),
    ).rejects.toThrow(`artifact ${baseUrl}/nothing: HTTP 404 Not Found`);
    await expect(
      cache.ensure(spec({ artifacts: [{ url: join(work, "absent"), sha256: "1".repeat(64) }] }), context()),
    ).rejects.toThrow(/^artifact .*absent: cannot fetch: ENOENT/);
    await expect(
      cache.ensure(
        spec({ artifacts: [{ url: `${baseUrl}/..%2F..%2Fescape`, sha256: "1".repeat(64) }] }),
        context(),
      ),
    ).rejects.toThrow(`artifact ${baseUrl}/..%2F..%2Fescape: the URL names no file`);
    expect(await setDirs()).toEqual([]);
  });

  it("installs a set once for concurrent callers, who all see its output", async () => {
    const body = Buffer.from("#!/bin/sh\necho slow\n");
    served.set("/slow", { body, delayMs: 500 });
    const logged: string[] = [];
    const diagnostics = new Writable({
      write(chunk, _encoding, done) {
        logged.push(String(chunk));
        done();
      },
    });
    const cache = new InstallCache({
      dir: cacheDir,
      maxBytes: 1e9,
      allowApt: false,
      logger: pino({ level: "info" }, diagnostics),
    });
    const wanted = spec({ artifacts: [{ url: `${baseUrl}/slow`, sha256: sha256(body) }] });
    const first: string[] = [];
    const second: string[] = [];
    const [a, b] = await Promise.all([
      cache.ensure(wanted, context(first)),
      cache.ensure(wanted, context(second)),
    ]);
    expect(b).toEqual(a);
    expect(requests).toEqual(["/slow"]);
    expect(logged.filter((line) => line.includes("installed dependency set"))).toHaveLength(1);
    expect(first[0]).toMatch(/^installing 1 artifact/);
    expect(second[0]).toMatch(/^waiting: the same dependencies are being installed for another task/);
    expect(second).toContain(first.at(-1));
    expect(runWith(a, "slow")).toBe("slow");
  });

  it("cancels an install when its caller aborts, leaving no set and no lock", async () => {
    const body = Buffer.from("#!/bin/sh\necho late\n");
    served.set("/very-slow", { body, delayMs: 60_000 });
    const cache = new InstallCache({ dir: cacheDir, maxBytes: 1e9, allowApt: false });
    const wanted = spec({ artifacts: [{ url: `${baseUrl}/very-slow`, sha256: sha256(body) }] });
    const controller = new AbortController();
    const lines: string[] = [];
    const started = Date.now();
    const install = cache.ensure(wanted, context(lines, controller.signal));
    setTimeout(() => controller.abort(new Error("task cancelled")), 300);
    await expect(install).rejects.toThrow("task cancelled");
    expect(Date.now() - started).toBeLessThan(5000);
    // the install cleans up after its caller has been answered
    await expect.poll(() => readdir(cacheDir), { timeout: 5000 }).toEqual([]);
    expect(lines.at(-1)).toBe(`fetching ${baseUrl}/very-slow`);

    served.set("/very-slow", { body, delayMs: 0 });
    const set = await cache.ensure(wanted, context());
    expect(runWith(set, "very-slow")).toBe("late");
  });

  it("keeps an install going while one of its callers remains", async () => {
    const body = Buffer.from("#!/bin/sh\necho shared\n");
    served.set("/shared", { body, delayMs: 700 });
    const cache = new InstallCache({ dir: cacheDir, maxBytes: 1e9, allowApt: false });
    const wanted = spec({ artifacts: [{ url: `${baseUrl}/shared`, sha256: sha256(body) }] });
    const leaving = new AbortController();
    const gone = cache.ensure(wanted, context([], leaving.signal));
    const staying = cache.ensure(wanted, context());
    setTimeout(() => leaving.abort(new Error("left")), 100);
    await expect(gone).rejects.toThrow("left");
    const set = await staying;
    expect(runWith(set, "shared")).toBe("shared");
    expect(requests).toEqual(["/shared"]);
  });

  it("redoes a set that an interrupted install left incomplete", async () => {
    const file = await scriptFile("redo", "redone");
    const wanted = spec({ artifacts: [{ url: file.path, sha256: file.sha256 }] });
    const key = installSetKey(installSetOf(wanted));
    await mkdir(join(cacheDir, key, "bin"), { recursive: true });
    await writeFile(join(cacheDir, key, "bin", "leftover"), "half");
    const cache = new InstallCache({ dir: cacheDir, maxBytes: 1e9, allowApt: false });
    const lines: string[] = [];
    const set = await cache.ensure(wanted, context(lines));
    expect(set.key).toBe(key);
    expect(lines).toContain("removing what an interrupted install of this set left");
    expect(existsSync(join(set.dir, "bin", "leftover"))).toBe(false);
    expect(runWith(set, "redo")).toBe("redone");
  });

  it("waits for a lock another process holds, and takes over one whose holder died", async () => {
    const file = await scriptFile("locked", "was locked");
    const wanted = spec({ artifacts: [{ url: file.path, sha256: file.sha256 }] });
    const lockDir = join(cacheDir, `${installSetKey(installSetOf(wanted))}.lock`);
    const cache = new InstallCache({ dir: cacheDir, maxBytes: 1e9, allowApt: false });

    await mkdir(lockDir); // fresh: its holder is alive
    const lines: string[] = [];
    const waiting = cache.ensure(wanted, context(lines));
    await expect
      .poll(() => lines[0])
      .toMatch(/^waiting for another process installing the same dependencies/);
    await rm(lockDir, { recursive: true });
    expect(runWith(await waiting, "locked")).toBe("was locked");

    await rm(join(cacheDir, installSetKey(installSetOf(wanted))), { recursive: true });
    await mkdir(lockDir);
    const minuteAgo = Date.now() / 1000 - 60;
    await utimes(lockDir, minuteAgo, minuteAgo); // stale: its holder stopped refreshing it
    const taken: string[] = [];
    const set = await cache.ensure(wanted, context(taken));
    expect(taken[0]).toMatch(/^installing 1 artifact/);
    expect(runWith(set, "locked")).toBe("was locked");
    expect(existsSync(lockDir)).toBe(false);
  });

  it("takes a relative `from` file from the task's working directory", async () => {
    const file = await scriptFile("from-file-tool", "from a file");
    await writeFile(
      join(work, "deps.json"),
      JSON.stringify({
        dependencies: [{ ecosystem: "artifact", name: "tool", url: file.path, sha256: file.sha256 }],
      }),
    );
    const cache = new InstallCache({ dir: cacheDir, maxBytes: 1e9, allowApt: false });
    const set = await cache.ensure(spec({ from: "deps.json" }), context());
    expect(set.key).toBe(
      installSetKey(installSetOf(spec({ artifacts: [{ url: file.path, sha256: file.sha256 }] }))),
    );
    expect(runWith(set, "from-file-tool")).toBe("from a file");
  });

  it("evicts the least recently used sets past maxBytes, never one in use", async () => {
    const files = await Promise.all(
      ["a", "b", "c", "d"].map(async (name) => {
        const body = randomBytes(100_000);
        const path = join(work, `blob-${name}`);
        await writeFile(path, body);
        return spec({ artifacts: [{ url: path, sha256: sha256(body) }] });
      }),
    );
    const [specA, specB, specC, specD] = files as [InstallSpec, InstallSpec, InstallSpec, InstallSpec];
    const cache = new InstallCache({ dir: cacheDir, maxBytes: 250_000, allowApt: false });
    const a = await cache.ensure(specA, context());
    const b = await cache.ensure(specB, context());
    const now = Date.now() / 1000;
    await utimes(join(a.dir, "last-used"), now - 200, now - 200);
    await utimes(join(b.dir, "last-used"), now - 100, now - 100);
    await cache.ensure(specA, context()); // A is now the most recently used
    const crashed = join(cacheDir, "f".repeat(64));
    await mkdir(crashed);

    const lines: string[] = [];
    const c = await cache.ensure(specC, context(lines));
    expect((await setDirs()).sort()).toEqual([a.key, c.key].sort());
    expect(lines).toContain(
      `removed incomplete install set ${"f".repeat(12)} (left by an interrupted install)`,
    );
    expect(
      lines.some((line) => line.startsWith(`evicted install set ${b.key.slice(0, 12)} (100000 bytes`)),
    ).toBe(true);

    // A is the least recently used now, but someone holds its lock: C goes instead
    await utimes(join(a.dir, "last-used"), now - 300, now - 300);
    const release = await tryLockSet(a.dir, () => {});
    expect(release).toBeDefined();
    try {
      const d = await cache.ensure(specD, context());
      expect((await setDirs()).sort()).toEqual([a.key, d.key].sort());
    } finally {
      await release?.();
    }
  });

  it("makes the cache directories it creates traversable by all", async () => {
    const file = await scriptFile("modes", "modes");
    const dir = join(cacheDir, "deep", "installs");
    const previous = process.umask(0o077);
    try {
      const cache = new InstallCache({ dir, maxBytes: 1e9, allowApt: false });
      const set = await cache.ensure(
        spec({ artifacts: [{ url: file.path, sha256: file.sha256 }] }),
        context(),
      );
      for (const path of [join(cacheDir, "deep"), dir, set.dir, join(set.dir, "bin")])
        expect((await stat(path)).mode & 0o7777).toBe(0o755);
    } finally {
      process.umask(previous);
    }
  });
});

describe("defaultInstallCacheDir", () => {
  it("is under /var/cache for root and the user's cache directory otherwise", () => {
    expect(defaultInstallCacheDir({}, 0, "/root")).toBe("/var/cache/taskframe/installs");
    expect(defaultInstallCacheDir({ XDG_CACHE_HOME: "/xdg" }, 1000, "/home/u")).toBe(
      "/xdg/taskframe/installs",
    );
    expect(defaultInstallCacheDir({}, 1000, "/home/u")).toBe("/home/u/.cache/taskframe/installs");
  });
});
