import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadWorkerPools } from "../core/definitions/worker-pools.js";
import { silentLogger } from "../core/logger.js";
import { packagePath } from "../core/package-root.js";
import { WorkerPool } from "../sidecar/runner/worker-pool.js";
import { task } from "./helpers/cli.js";
import { startCluster } from "./helpers/cluster.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "taskframe-pool-"));
  // task run jails its worker pools: they run as nobody and must reach the data directory's socket
  await chmod(dir, 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const until = async (condition: () => boolean, timeoutMs = 10_000) => {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe("a supervised worker pool", () => {
  it("restarts a crashing worker, then gives up and is unhealthy instead of hot-looping", async () => {
    const pool = new WorkerPool(
      {
        name: "crashy",
        command: "sh",
        args: ["-c", "echo started >> starts; exit 3"],
        instances: 1,
        env: {},
        cwd: dir,
      },
      {
        socketPath: join(dir, "none.sock"),
        logger: silentLogger,
        startLimitBurst: 3,
        startLimitIntervalMs: 10_000,
      },
    );
    pool.start();
    await until(() => pool.health === "unhealthy");
    // no fourth start after giving up
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await readFile(join(dir, "starts"), "utf8")).trim().split("\n")).toHaveLength(3);
    await pool.stop();
    expect(pool.health).toBe("stopped");
  });

  it("keeps every instance running and stops them all, with the socket in their environment", async () => {
    const pool = new WorkerPool(
      {
        name: "sleepers",
        command: "sh",
        args: ["-c", 'echo "$TASKFRAME_SOCKET $TASKFRAME_WORKER_POOL $GREETING"; exec sleep 60'],
        instances: 3,
        env: { GREETING: "hi" },
        cwd: dir,
      },
      { socketPath: "/run/x.sock", logger: silentLogger, logDir: join(dir, "logs") },
    );
    pool.start();
    await until(() => pool.running === 3);
    const log = join(dir, "logs", "sleepers-2.log");
    await until(() => existsSync(log) && readFileSync(log, "utf8").length > 0);
    await pool.stop();
    expect(pool.running).toBe(0);
    expect(await readFile(join(dir, "logs", "sleepers-2.log"), "utf8")).toBe("/run/x.sock sleepers hi\n");
  });
});

describe("workers: in a pipeline file", () => {
  it("are read with their command relative to the file", async () => {
    const pools = await loadWorkerPools(packagePath("examples/handlers.yaml"));
    expect(pools).toEqual([
      expect.objectContaining({ name: "ts", command: "node", instances: 1, cwd: packagePath("examples") }),
    ]);
  });

  it("are rejected with the field's position when malformed", async () => {
    const file = join(dir, "bad.yaml");
    await import("node:fs/promises").then((fs) =>
      fs.writeFile(
        file,
        "tasks: { a: { run: 'true' } }\nworkers:\n  py: { run: python3 w.py, instances: 0 }\n",
      ),
    );
    await expect(loadWorkerPools(file)).rejects.toThrow(/bad\.yaml:3.*instances/s);
  });

  it("are started by task run, which drives the handler pipeline to the end", async () => {
    const result = await task(["run", "examples/handlers.yaml", "--data", join(dir, "data")], {
      cwd: packagePath("."),
    });
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toMatch(/flaky\s+SUCCEEDED\s+2\/3/);
    const shown = await task(["logs", "count", "--data", join(dir, "data")], { cwd: packagePath(".") });
    expect(shown.stdout.toString()).toContain("counted 11 words");
  });
});

describe("a .worker unit", () => {
  it("declares one pool, named after the file", async () => {
    const file = join(dir, "resize.worker");
    await writeFile(
      file,
      '[Worker]\nCommand=python3 worker.py --fast\nInstances=4\nEnvironment=A=1 "B=two words"\nWorkingDirectory=sub\n' +
        "User=nobody\nGroup=nogroup\nLimitMem=512M\nLimitPids=64\nLimitCPU=50%\n",
    );
    expect(await loadWorkerPools(file)).toEqual([
      {
        name: "resize",
        command: "python3",
        args: ["worker.py", "--fast"],
        instances: 4,
        env: { A: "1", B: "two words" },
        cwd: join(dir, "sub"),
        user: "nobody",
        group: "nogroup",
        limits: { memoryBytes: 512n * 2n ** 20n, diskBytes: 0n, pids: 64, cpuMillis: 500 },
      },
    ]);
  });

  it("is rejected with every problem's position", async () => {
    const file = join(dir, "bad.worker");
    await writeFile(file, "[Worker]\nInstances=0\nUsr=nobody\nLimitMem=lots\n[Service]\nType=simple\n");
    const error = await loadWorkerPools(file).catch((e: Error) => e);
    expect(String(error)).toContain(
      "bad.worker:2:11: Instances=0: expected a number of processes from 1 to 256",
    );
    expect(String(error)).toContain("bad.worker:3:1: unknown key Usr= in [Worker]");
    expect(String(error)).toContain('bad.worker:4:10: LimitMem=lots: expected a size such as "512M"');
    expect(String(error)).toContain("bad.worker:5:1: unknown section [Service]");
    expect(String(error)).toContain("[Worker] needs Command=");
  });

  it("is started by task sidecar --workers, which then serves the handler pipeline from another host", async () => {
    await using cluster = await startCluster({
      sidecars: 1,
      sidecarFlags: ["--workers", packagePath("examples/handlers/ts.worker")],
    });
    const result = await task(
      ["submit", "examples/handlers.yaml", "--hub", cluster.hubUrls[0]!, "--wait", "--quiet"],
      { cwd: packagePath(".") },
    );
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toMatch(/flaky\s+SUCCEEDED\s+2\/3/);
  }, 60_000);
});
