import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { Queue } from "bullmq";
import { RunSpecSchema, TaskSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { packagePath } from "../core/package-root.js";
import { spawnBullWorker, startHandlersCluster, stopChild } from "./local-handlers.js";
import { cpuBetween, findPids, type IdleReport, procSample, sumRss, watchIdle } from "./proc-stats.js";
import { mb, type Scenario, type Table } from "./scenario.js";
import { submitAndWait, type Timed } from "./workloads.js";

const run = promisify(execFile);

const TARGETS = {
  sidecarIdleRssMb: 60,
  /** "~0%": at most this % of a core. */
  sidecarIdleCpuPercent: 1,
  hubIdleRssMb: 150,
  installMb: 30,
};

export interface PackageSizes {
  packedBytes: number;
  unpackedBytes: number;
  entries: number;
  /** node_modules of `npm install --omit=dev` of the packed tarball; undefined when the install failed. */
  installBytes: number | undefined;
  installFiles: number | undefined;
  installSeconds: number | undefined;
  /** The largest installed packages. */
  largest: { name: string; bytes: number }[];
  installError: string | undefined;
}

/** Apparent size (bytes) and file count of a directory tree; symlinks are not followed. */
function treeSize(path: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  const stats = lstatSync(path);
  if (!stats.isDirectory()) return { bytes: stats.size, files: 1 };
  for (const entry of readdirSync(path)) {
    const child = treeSize(join(path, entry));
    bytes += child.bytes;
    files += child.files;
  }
  return { bytes, files };
}

/** Each installed package's size (scoped packages one by one). */
function packageSizes(nodeModules: string): { name: string; bytes: number }[] {
  const sizes: { name: string; bytes: number }[] = [];
  for (const entry of readdirSync(nodeModules)) {
    if (entry.startsWith(".")) continue;
    if (entry.startsWith("@")) {
      for (const scoped of readdirSync(join(nodeModules, entry)))
        sizes.push({ name: `${entry}/${scoped}`, bytes: treeSize(join(nodeModules, entry, scoped)).bytes });
    } else {
      sizes.push({ name: entry, bytes: treeSize(join(nodeModules, entry)).bytes });
    }
  }
  return sizes.sort((a, b) => b.bytes - a.bytes);
}

/**
 * What `npm pack` would publish (from the built dist/; scripts are not run),
 * and the node_modules of a production install of that tarball.
 */
export async function measurePackage(progress: (text: string) => void): Promise<PackageSizes> {
  const root = packagePath(".");
  progress("  npm pack --dry-run ...");
  const { stdout } = await run("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
    cwd: root,
    maxBuffer: 256 * 2 ** 20,
  });
  const [packed] = JSON.parse(stdout) as { size: number; unpackedSize: number; entryCount: number }[];
  const sizes: PackageSizes = {
    packedBytes: packed!.size,
    unpackedBytes: packed!.unpackedSize,
    entries: packed!.entryCount,
    installBytes: undefined,
    installFiles: undefined,
    installSeconds: undefined,
    largest: [],
    installError: undefined,
  };
  const dir = mkdtempSync(join(tmpdir(), "taskframe-bench-pack-"));
  try {
    const packOut = await run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dir], {
      cwd: root,
      maxBuffer: 256 * 2 ** 20,
    });
    const [tarball] = JSON.parse(packOut.stdout) as { filename: string }[];
    const app = join(dir, "app");
    mkdirSync(app);
    writeFileSync(
      join(app, "package.json"),
      `${JSON.stringify({ name: "footprint-app", version: "1.0.0", private: true })}\n`,
    );
    progress("  npm install --omit=dev of the tarball (local npm cache first) ...");
    const started = performance.now();
    try {
      await run(
        "npm",
        [
          "install",
          "--omit=dev",
          "--ignore-scripts",
          "--prefer-offline",
          "--no-audit",
          "--no-fund",
          "--no-package-lock",
          join(dir, tarball!.filename),
        ],
        { cwd: app, timeout: 300_000, maxBuffer: 64 * 2 ** 20 },
      );
      sizes.installSeconds = (performance.now() - started) / 1000;
      const nodeModules = join(app, "node_modules");
      const tree = treeSize(nodeModules);
      sizes.installBytes = tree.bytes;
      sizes.installFiles = tree.files;
      sizes.largest = packageSizes(nodeModules).slice(0, 6);
    } catch (error) {
      const e = error as { killed?: boolean; message: string };
      sizes.installError = e.killed ? "npm install took over 300 s (network?)" : e.message.split("\n")[0];
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return sizes;
}

/** A bare `node` doing nothing: the runtime's own share of every Node process's RSS. */
function spawnBareNode(): ChildProcess {
  return spawn(process.execPath, ["-e", "setInterval(() => {}, 1 << 30)"], { stdio: "ignore" });
}

const mb1 = (bytes: number | undefined) =>
  bytes === undefined ? "n/a" : `${(bytes / 2 ** 20).toFixed(1)} MB`;
const fmtMs = (n: number) => `${Math.round(n)} ms`;
const pct = (n: number | undefined) => (n === undefined ? "n/a" : `${n.toFixed(2)}%`);
const within = (value: number | undefined, limit: number) =>
  value === undefined ? "" : value <= limit ? "met" : "MISSED";

export const footprintScenario: Scenario = {
  name: "footprint",
  summary:
    "cold start, idle RSS and CPU, loaded peak RSS of task hub and task sidecar (N no-op handler tasks\nthrough a TS worker), and the install size; beside an idle BullMQ worker (default 20000)",
  async run({ tasks = 20_000, concurrency, db, nats, redis, seconds, progress }) {
    const idleSeconds = seconds ?? 10;
    progress("  starting task hub and task sidecar on a fresh scratch database ...");
    await using fixture = await startHandlersCluster({ dbUrl: db, natsUrl: nats, concurrency });
    // a second hub on the now-migrated schema: a restart's start-up, then it goes away
    const started = performance.now();
    const second = await fixture.cluster.startHub();
    const hubWarmStartMs = performance.now() - started;
    await stopChild(second.child);

    const bullQueue = `taskframe-footprint-${randomBytes(4).toString("hex")}`;
    const bull = await spawnBullWorker({ redisUrl: redis, queue: bullQueue, concurrency });
    const bare = spawnBareNode();
    const dbName = new URL(fixture.databaseUrl).pathname.slice(1);
    const backends = () =>
      findPids((cmdline) => cmdline.startsWith("postgres:") && cmdline.includes(` ${dbName} `));
    const natsPid = findPids((_, comm) => comm === "nats-server")[0];
    const postmasterPid = findPids((cmdline, comm) => comm === "postgres" && / -D /.test(cmdline))[0];
    try {
      await new Promise((resolve) => setTimeout(resolve, 3_000)); // the workers connect, start-up settles
      const pids = {
        hub: fixture.hubPid,
        sidecar: fixture.sidecarPid,
        worker: fixture.worker.pid,
        bullmq: bull.pid,
        bare: bare.pid,
        nats: natsPid,
      };
      progress(`  idle for ${idleSeconds} s ...`);
      const idle = await watchIdle(pids, idleSeconds);
      const idleBackends = sumRss(backends());

      progress(`  ${tasks} no-op handler tasks ...`);
      const before = { hub: procSample(fixture.hubPid)!, sidecar: procSample(fixture.sidecarPid)! };
      const spec = create(RunSpecSchema, {
        name: "bench-footprint",
        tasks: Array.from({ length: tasks }, (_, i) =>
          create(TaskSpecSchema, { name: `h${i}`, target: { case: "handler", value: { handler: "noop" } } }),
        ),
      });
      const load: Timed = await submitAndWait(fixture.client, spec);
      const after = {
        hub: procSample(fixture.hubPid)!,
        sidecar: procSample(fixture.sidecarPid)!,
        worker: fixture.worker.pid === undefined ? undefined : procSample(fixture.worker.pid),
      };
      const loadedBackends = sumRss(backends());
      progress(`  idle again for ${idleSeconds} s ...`);
      const idleAfter = await watchIdle({ hub: fixture.hubPid, sidecar: fixture.sidecarPid }, idleSeconds);
      const hubLoadCpu = cpuBetween(before.hub, after.hub);
      const sidecarLoadCpu = cpuBetween(before.sidecar, after.sidecar);

      const pack = await measurePackage(progress);

      const data = {
        startup: {
          hubColdMs: fixture.hubStartMs,
          hubWarmMs: hubWarmStartMs,
          sidecarMs: fixture.sidecarStartMs,
        },
        idleSeconds,
        idle,
        idleBackends,
        load: {
          ...load,
          hubPeakRssBytes: after.hub.hwmBytes,
          sidecarPeakRssBytes: after.sidecar.hwmBytes,
          workerPeakRssBytes: after.worker?.hwmBytes,
          hubCpuSeconds: hubLoadCpu.seconds,
          sidecarCpuSeconds: sidecarLoadCpu.seconds,
          backends: loadedBackends,
        },
        idleAfter,
        postmasterRssBytes: postmasterPid === undefined ? undefined : procSample(postmasterPid)?.rssBytes,
        package: pack,
        targets: TARGETS,
      };
      const idleRow = (label: string, report: IdleReport | undefined, target: string, verdict: string) => [
        label,
        mb(report?.rssBytes),
        mb(report?.rssAnonBytes),
        mb(report?.maxRssBytes),
        pct(report?.cpuPercent),
        target,
        verdict,
      ];
      const mbOf = (report: IdleReport | undefined) =>
        report === undefined ? undefined : report.rssBytes / 2 ** 20;
      const sidecarVerdict = (report: IdleReport | undefined) =>
        report === undefined
          ? ""
          : `RSS ${within(mbOf(report), TARGETS.sidecarIdleRssMb)}, CPU ${report.cpuPercent <= TARGETS.sidecarIdleCpuPercent ? "met" : "MISSED"}`;
      const tables: Table[] = [
        {
          title: "footprint: start-up (launch to ready; polled every 50 ms)",
          header: ["process", "ready after", "ready when"],
          rows: [
            ["task hub, fresh database", fmtMs(fixture.hubStartMs), "'hub listening' (schema migrated)"],
            ["task hub, migrated database", fmtMs(hubWarmStartMs), "'hub listening'"],
            [
              "task sidecar",
              fmtMs(fixture.sidecarStartMs),
              "'leasing pools' (connected to NATS and the hub)",
            ],
          ],
        },
        {
          title: `footprint: idle ${idleSeconds} s (RSS at the end; CPU % of one core over the window)`,
          header: ["process", "RSS", "RssAnon", "max RSS", "CPU", "target", "verdict"],
          rows: [
            idleRow(
              "task hub",
              idle.hub,
              `RSS <= ${TARGETS.hubIdleRssMb} MB`,
              within(mbOf(idle.hub), TARGETS.hubIdleRssMb),
            ),
            idleRow(
              "task sidecar",
              idle.sidecar,
              `RSS <= ${TARGETS.sidecarIdleRssMb} MB, ~0% CPU`,
              sidecarVerdict(idle.sidecar),
            ),
            idleRow("TS worker (noop.mjs)", idle.worker, "", ""),
            idleRow(
              "task hub, after the load",
              idleAfter.hub,
              `RSS <= ${TARGETS.hubIdleRssMb} MB`,
              within(mbOf(idleAfter.hub), TARGETS.hubIdleRssMb),
            ),
            idleRow(
              "task sidecar, after the load",
              idleAfter.sidecar,
              `RSS <= ${TARGETS.sidecarIdleRssMb} MB, ~0% CPU`,
              sidecarVerdict(idleAfter.sidecar),
            ),
            idleRow(`peer: BullMQ Worker x ${concurrency} (own process)`, idle.bullmq, "", ""),
            idleRow("bare node (setInterval)", idle.bare, "", ""),
            idleRow("nats-server (shared with others)", idle.nats, "", ""),
            [
              `Postgres backends of the scratch db (${idleBackends.count})`,
              mb(idleBackends.rssBytes),
              mb(idleBackends.rssAnonBytes),
              "",
              "",
              "",
              "RSS counts shared buffers touched",
            ],
          ],
        },
        {
          title: `footprint: loaded, ${tasks} no-op handler tasks in one run (worker concurrency ${concurrency})`,
          header: ["process", "peak RSS (VmHWM)", "CPU during the run", "note"],
          rows: [
            [
              "task hub",
              mb(after.hub.hwmBytes),
              `${hubLoadCpu.seconds.toFixed(1)} s (${((hubLoadCpu.seconds * 1e6) / tasks).toFixed(0)} us/task)`,
              `run ${load.state} in ${load.totalSeconds.toFixed(1)} s, ${load.tasksPerSecond.toFixed(0)} tasks/s`,
            ],
            [
              "task sidecar",
              mb(after.sidecar.hwmBytes),
              `${sidecarLoadCpu.seconds.toFixed(1)} s (${((sidecarLoadCpu.seconds * 1e6) / tasks).toFixed(0)} us/task)`,
              "",
            ],
            ["TS worker", mb(after.worker?.hwmBytes), "", ""],
            [
              `Postgres backends (${loadedBackends.count})`,
              mb(loadedBackends.rssBytes),
              "",
              `RssAnon ${mb(loadedBackends.rssAnonBytes)}, right after the run`,
            ],
          ],
        },
        {
          title: "footprint: package (npm pack of the built dist/, and a production install of it)",
          header: ["what", "size", "target", "verdict", "note"],
          rows: [
            ["npm pack tarball", mb1(pack.packedBytes), "", "", `${pack.entries} files`],
            ["unpacked package", mb1(pack.unpackedBytes), "", "", ""],
            [
              "npm install --omit=dev node_modules",
              mb1(pack.installBytes),
              `<= ${TARGETS.installMb} MB`,
              within(
                pack.installBytes === undefined ? undefined : pack.installBytes / 2 ** 20,
                TARGETS.installMb,
              ),
              pack.installError ??
                `${pack.installFiles} files, installed in ${pack.installSeconds?.toFixed(1)} s; largest: ${pack.largest
                  .map((p) => `${p.name} ${mb(p.bytes)}`)
                  .join(", ")}`,
            ],
          ],
        },
      ];
      return { data, tables };
    } finally {
      await stopChild(bull);
      await stopChild(bare);
      const redisUrl = new URL(redis);
      const queue = new Queue(bullQueue, {
        connection: { host: redisUrl.hostname, port: Number(redisUrl.port || 6379) },
      });
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
    }
  },
};
