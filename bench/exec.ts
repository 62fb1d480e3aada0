import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { HubService } from "../core/gen/taskframe/v1/hub_pb.js";
import { EmbeddedEngine } from "../embedded/engine.js";
import { startLocalCluster } from "../embedded/local-cluster.js";
import { createScratchDatabase } from "../hub/store/scratch-database.js";
import { jailProblems, probeHost } from "../sidecar/jail/host-support.js";
import { INSTALLED_NATIVE_HELPER, Spawner, writeSeccompFilter } from "../sidecar/spawner/spawner.js";
import { peakRssBytes } from "./machine.js";
import {
  bwrapTiming,
  makeTiming,
  type PeerTiming,
  posixSpawnTiming,
  processCpuSeconds,
  processTreeCpuSeconds,
  xargsTiming,
} from "./peers.js";
import { mb, type Scenario, type Table } from "./scenario.js";
import { submitAndWait, type Timed, trueTasks } from "./workloads.js";

type HelperKind = "native" | "node";

/** One runner's measurement: wall clock and the CPU its process tree used. */
export interface ExecRow {
  runner: string;
  tasks: number;
  seconds: number;
  /** User + system CPU of the runner's processes and the /bin/true they ran (Postgres and NATS excluded). */
  cpuSeconds: number;
  peakRss?: string;
  note?: string;
}

/** CPU seconds of each part of a run, by name. */
export type CpuBy = Record<string, number>;

/** Reads the CPU of each named part now: `parts` gives a function per part. */
function cpuReading(parts: Record<string, () => number>): () => CpuBy {
  const before = Object.fromEntries(Object.entries(parts).map(([name, read]) => [name, read()]));
  return () =>
    Object.fromEntries(Object.entries(parts).map(([name, read]) => [name, read() - before[name]!]));
}

/** "hub 620, sidecar 480 µs" per task. */
const cpuNote = (cpuBy: CpuBy, tasks: number) =>
  `CPU/task: ${Object.entries(cpuBy)
    .map(([name, seconds]) => `${name} ${Math.round((1e6 * seconds) / tasks)}`)
    .join(", ")} µs`;

export interface SpawnerOnlyResult {
  helper: HelperKind;
  tasks: number;
  seconds: number;
  cpuSeconds: number;
  cpuBy: CpuBy;
  failed: number;
  helperPeakRssBytes?: number;
}

export interface ExecResult {
  tasks: number;
  slots: number;
  /** xargs -P, make -j and the first posix_spawn row run this many at once: the machine's cores. */
  cores: number;
  /** Which spawner helper the sidecars used: the native one when it was built at install. */
  sidecarHelper: HelperKind;
  distributed: Timed & {
    cpuSeconds: number;
    /** CPU seconds by process: the hub, the sidecar, its spawner helper with the tasks. */
    cpuBy: CpuBy;
    hubPeakRssBytes?: number;
    sidecarPeakRssBytes?: number;
  };
  embedded: Timed & { cpuSeconds: number; cpuBy: CpuBy; peakRssBytes: number; spawnerPeakRssBytes?: number };
  spawnerOnly: SpawnerOnlyResult[];
  posixSpawnCores: PeerTiming;
  posixSpawnSlots: PeerTiming;
  make: PeerTiming;
  xargs: PeerTiming;
  /** The same tasks in the standard jail (bubblewrap, cgroups, seccomp, as nobody); undefined where the host cannot jail. */
  jailed?: {
    distributed: ExecResult["distributed"];
    embedded: ExecResult["embedded"];
    /** bubblewrap alone running /bin/true through xargs -P: the jail's own cost. */
    bwrap?: PeerTiming;
  };
  rows: ExecRow[];
}

/** The tasks' environment in the spawner-only rows: what a sidecar passes, minus the task's own variables. */
const TASK_ENV = { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin" };

const cpuProfArgs = (dir: string) => ["--cpu-prof", "--cpu-prof-dir", dir];

/**
 * Runs `fn` with TASKFRAME_SPAWNER_NODE_ARGS set, so that a spawner helper on
 * Node started meanwhile (here, or by a sidecar started meanwhile) writes a
 * CPU profile into `dir`; no-op without `dir`. Node 20 refuses --cpu-prof in
 * NODE_OPTIONS. The native helper is not profiled this way (use perf).
 */
async function profilingHelpers<T>(dir: string | undefined, fn: () => Promise<T>): Promise<T> {
  if (!dir) return fn();
  mkdirSync(dir, { recursive: true });
  const before = process.env.TASKFRAME_SPAWNER_NODE_ARGS;
  process.env.TASKFRAME_SPAWNER_NODE_ARGS = cpuProfArgs(dir).join(" ");
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.TASKFRAME_SPAWNER_NODE_ARGS;
    else process.env.TASKFRAME_SPAWNER_NODE_ARGS = before;
  }
}

/** Profiles this process while `fn` runs, into `file` (when given): the embedded engine, or the spawner's caller. */
async function profilingSelf<T>(file: string | undefined, fn: () => Promise<T>): Promise<T> {
  if (!file) return fn();
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  try {
    return await fn();
  } finally {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  }
}

type JailChoice = "none" | "standard";

/** Why this host cannot run the jailed rows (empty: it can), as `task doctor` would say. */
async function hostJailProblems(): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), "taskframe-bench-jail-"));
  try {
    const support = await probeHost({
      nativeSpawner: existsSync(INSTALLED_NATIVE_HELPER),
      writeSeccompFilter,
      seccompFilterPath: join(dir, "seccomp.bpf"),
      defaultUser: "nobody",
    });
    return jailProblems(support);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Where the bench's tasks run: reachable by a jailed task's account. */
function taskDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "taskframe-bench-exec-"));
  chmodSync(dir, 0o755);
  return dir;
}

/** 1 hub + 1 sidecar as processes over Postgres (a scratch database) and NATS (a scratch namespace). */
async function distributedExec(
  count: number,
  options: {
    dbUrl: string;
    natsUrl: string;
    slots: number;
    profileDir: string | undefined;
    jail: JailChoice;
  },
): Promise<ExecResult["distributed"]> {
  await using database = await createScratchDatabase(options.dbUrl, "taskframe_bench");
  const dir = taskDir();
  const profiles = options.profileDir && join(options.profileDir, "distributed");
  const cluster = await profilingHelpers(profiles, () =>
    startLocalCluster({
      dbUrl: database.url,
      natsUrl: options.natsUrl,
      namespace: `bench${randomBytes(4).toString("hex")}`,
      dir,
      hubs: 1,
      sidecars: 1,
      slots: options.slots,
      logLevel: "error",
      jail: options.jail,
      ...(profiles ? { nodeArgs: cpuProfArgs(profiles) } : {}),
    }),
  );
  try {
    const client = createClient(
      HubService,
      createConnectTransport({ baseUrl: cluster.hubUrls[0]!, httpVersion: "1.1" }),
    );
    const hubPid = cluster.hubs[0]!.child.pid!;
    const sidecarPid = cluster.sidecars[0]!.child.pid!;
    const cpuBefore = processTreeCpuSeconds();
    const cpu = cpuReading({
      hub: () => processCpuSeconds(hubPid),
      sidecar: () => processCpuSeconds(sidecarPid),
      "helper+tasks": () => processTreeCpuSeconds(sidecarPid) - processCpuSeconds(sidecarPid),
    });
    const timed = await submitAndWait(client, trueTasks(count, "independent", dir));
    const cpuBy = cpu();
    const cpuSeconds = processTreeCpuSeconds() - cpuBefore;
    const hubRss = peakRssBytes(hubPid);
    const sidecarRss = peakRssBytes(sidecarPid);
    return {
      ...timed,
      cpuSeconds,
      cpuBy,
      ...(hubRss === undefined ? {} : { hubPeakRssBytes: hubRss }),
      ...(sidecarRss === undefined ? {} : { sidecarPeakRssBytes: sidecarRss }),
    };
  } finally {
    await cluster.stop();
    await cluster.deleteStreams().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Embedded mode (`task run`): hub and sidecar in this process over PGlite, tasks forked by the spawner helper. */
async function embeddedExec(
  count: number,
  slots: number,
  profileDir: string | undefined,
  jail: JailChoice,
): Promise<ExecResult["embedded"]> {
  const dir = taskDir();
  const profiles = profileDir && join(profileDir, "embedded");
  return profilingHelpers(profiles, async () => {
    const engine = await EmbeddedEngine.open({ dataDir: dir, slots, jail: { profile: jail } });
    try {
      const cpuBefore = processTreeCpuSeconds();
      const cpu = cpuReading({
        "hub+sidecar": () => processCpuSeconds(process.pid),
        "helper+tasks": () => processTreeCpuSeconds() - processCpuSeconds(process.pid),
      });
      const timed = await profilingSelf(profiles && join(profiles, "engine.cpuprofile"), () =>
        submitAndWait(engine.client(), trueTasks(count, "independent", dir)),
      );
      const cpuBy = cpu();
      const cpuSeconds = processTreeCpuSeconds() - cpuBefore;
      const spawnerPid = engine.spawnerPid;
      const spawnerRss = spawnerPid === undefined ? undefined : peakRssBytes(spawnerPid);
      return {
        ...timed,
        cpuSeconds,
        cpuBy,
        peakRssBytes: process.resourceUsage().maxRSS * 1024,
        ...(spawnerRss === undefined ? {} : { spawnerPeakRssBytes: spawnerRss }),
      };
    } finally {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/**
 * The sidecar's Spawner driven directly, `inFlight` processes at once, with a
 * process ledger as the sidecar keeps one: no hub, no NATS, no Postgres, no
 * log capture. What the end-to-end rate is bounded by on the spawning side.
 */
async function spawnerOnly(
  count: number,
  inFlight: number,
  helper: HelperKind,
  profileDir: string | undefined,
): Promise<SpawnerOnlyResult> {
  const dir = mkdtempSync(join(tmpdir(), "taskframe-bench-exec-"));
  const profiles = profileDir && join(profileDir, `spawner-only-${helper}`);
  return profilingHelpers(profiles, async () => {
    const spawner = new Spawner({
      ledgerDir: join(dir, "ledger"),
      ...(helper === "node" ? { nativeHelper: false } : {}),
    });
    let failed = 0;
    const drive = async (total: number) => {
      let started = 0;
      const lane = async () => {
        while (started < total) {
          started++;
          const outcome = await spawner.run({
            command: "/bin/true",
            args: [],
            env: TASK_ENV,
            cwd: dir,
            timeoutMs: 0,
            killGraceMs: 5_000,
            outputLimitBytes: 16 * 2 ** 20,
            onOutput: () => {},
          });
          if (outcome.exitCode !== 0) failed++;
        }
      };
      await Promise.all(Array.from({ length: Math.min(inFlight, total) }, lane));
    };
    try {
      if (spawner.helperKind !== helper)
        throw new Error(`no ${helper} spawner helper here (built at npm install)`);
      // starts the helper and warms both ends up
      await drive(Math.min(count, 4 * inFlight));
      failed = 0;
      const cpuBefore = processTreeCpuSeconds();
      const helperPid = spawner.pid!;
      const cpu = cpuReading({
        caller: () => processCpuSeconds(process.pid),
        helper: () => processCpuSeconds(helperPid),
        tasks: () => processTreeCpuSeconds(helperPid) - processCpuSeconds(helperPid),
      });
      const started = performance.now();
      await profilingSelf(profiles && join(profiles, "caller.cpuprofile"), () => drive(count));
      const seconds = (performance.now() - started) / 1000;
      const cpuBy = cpu();
      const cpuSeconds = processTreeCpuSeconds() - cpuBefore;
      const helperRss = spawner.pid === undefined ? undefined : peakRssBytes(spawner.pid);
      return {
        helper,
        tasks: count,
        seconds,
        cpuSeconds,
        cpuBy,
        failed,
        ...(helperRss === undefined ? {} : { helperPeakRssBytes: helperRss }),
      };
    } finally {
      await spawner.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

function execTable(
  title: string,
  rows: readonly ExecRow[],
  limitPerSecond: number,
  notes: string[][],
): Table {
  return {
    title,
    header: ["runner", "items", "seconds", "items/s", "% of limit", "CPU/task", "peak RSS", "note"],
    rows: [
      ...rows.map((r) => {
        const rate = r.tasks / r.seconds;
        return [
          r.runner,
          String(r.tasks),
          r.seconds.toFixed(2),
          rate.toFixed(0),
          `${((100 * rate) / limitPerSecond).toFixed(0)}%`,
          `${((1e6 * r.cpuSeconds) / r.tasks).toFixed(0)} µs`,
          r.peakRss ?? "",
          r.note ?? "",
        ];
      }),
      ...notes,
    ],
  };
}

export const execScenario: Scenario = {
  name: "exec",
  summary:
    "N /bin/true executable tasks through 1 hub + 1 sidecar (processes, over Postgres and NATS), embedded\nmode, and the sidecar's spawner alone, beside posix_spawn in C, make -j and xargs -P (default 20000)",
  async run({ tasks = 20_000, slots, db, nats, profileDir, progress }) {
    const cores = availableParallelism();
    // what a sidecar started now picks: the same environment, the same installed binary
    const sidecarHelper = new Spawner().helperKind;
    progress(`  taskframe: 1 hub + 1 sidecar (${slots} slots, ${sidecarHelper} spawner helper) ...`);
    const distributed = await distributedExec(tasks, {
      dbUrl: db,
      natsUrl: nats,
      slots,
      profileDir,
      jail: "none",
    });
    progress(`  taskframe embedded (${slots} slots) ...`);
    const embedded = await embeddedExec(tasks, slots, profileDir, "none");
    let jailed: ExecResult["jailed"];
    const jailProblems = await hostJailProblems();
    if (jailProblems.length === 0) {
      progress(`  taskframe 1 hub + 1 sidecar, jailed (${slots} slots) ...`);
      const jailedDistributed = await distributedExec(tasks, {
        dbUrl: db,
        natsUrl: nats,
        slots,
        profileDir,
        jail: "standard",
      });
      progress(`  taskframe embedded, jailed (${slots} slots) ...`);
      const jailedEmbedded = await embeddedExec(tasks, slots, profileDir, "standard");
      progress(`  bwrap alone through xargs -P ${cores} ...`);
      const bwrap = bwrapTiming(tasks, cores);
      jailed = { distributed: jailedDistributed, embedded: jailedEmbedded, ...(bwrap ? { bwrap } : {}) };
    }
    const spawners: SpawnerOnlyResult[] = [];
    for (const helper of sidecarHelper === "native" ? (["native", "node"] as const) : (["node"] as const)) {
      progress(`  spawner only, ${helper} helper (${slots} in flight) ...`);
      spawners.push(await spawnerOnly(tasks, slots, helper, profileDir));
    }
    progress(`  posix_spawn in C (${cores} and ${slots} in flight) ...`);
    const posixSpawnCores = posixSpawnTiming(tasks, cores);
    const posixSpawnSlots = posixSpawnTiming(tasks, slots);
    progress(`  make -j ${cores} ...`);
    const make = makeTiming(tasks, cores);
    progress(`  xargs -P ${cores} ...`);
    const xargs = xargsTiming(tasks, cores);

    const limit = tasks / Math.min(posixSpawnCores.seconds, posixSpawnSlots.seconds);
    const rows: ExecRow[] = [
      {
        runner: `taskframe 1 hub + 1 sidecar (${slots} slots)`,
        tasks: distributed.tasks,
        seconds: distributed.totalSeconds,
        cpuSeconds: distributed.cpuSeconds,
        peakRss: `hub ${mb(distributed.hubPeakRssBytes)}; sidecar ${mb(distributed.sidecarPeakRssBytes)}`,
        note: `run ${distributed.state}; ${sidecarHelper} helper; ${cpuNote(distributed.cpuBy, distributed.tasks)}; Postgres + NATS not counted`,
      },
      {
        runner: `taskframe embedded (${slots} slots)`,
        tasks: embedded.tasks,
        seconds: embedded.totalSeconds,
        cpuSeconds: embedded.cpuSeconds,
        peakRss: `${mb(embedded.peakRssBytes)} + spawner ${mb(embedded.spawnerPeakRssBytes)}`,
        note: `run ${embedded.state}; ${sidecarHelper} helper; ${cpuNote(embedded.cpuBy, embedded.tasks)}`,
      },
      ...spawners.map((spawner) => ({
        runner: `spawner only, ${spawner.helper} helper (${slots} in flight)`,
        tasks: spawner.tasks,
        seconds: spawner.seconds,
        cpuSeconds: spawner.cpuSeconds,
        peakRss: `helper ${mb(spawner.helperPeakRssBytes)}`,
        note: `Spawner alone, ledger on; ${cpuNote(spawner.cpuBy, spawner.tasks)}${spawner.failed ? `; ${spawner.failed} FAILED` : ""}`,
      })),
      {
        runner: `posix_spawn in C (${cores} in flight)`,
        tasks,
        ...posixSpawnCores,
        note: "bench/native/posix-spawn-true.c, cc -O2",
      },
      {
        runner: `posix_spawn in C (${slots} in flight)`,
        tasks,
        ...posixSpawnSlots,
        note: "the same, as many in flight as the slots",
      },
      { runner: `make -j ${cores}`, tasks, ...make, note: "no record, no logs" },
      { runner: `xargs -P ${cores} /bin/true`, tasks, ...xargs, note: "no record, no logs" },
    ];
    const jailRows: ExecRow[] = jailed
      ? [
          {
            runner: `taskframe 1 hub + 1 sidecar, jailed (${slots} slots)`,
            tasks: jailed.distributed.tasks,
            seconds: jailed.distributed.totalSeconds,
            cpuSeconds: jailed.distributed.cpuSeconds,
            peakRss: `hub ${mb(jailed.distributed.hubPeakRssBytes)}; sidecar ${mb(jailed.distributed.sidecarPeakRssBytes)}`,
            note: `run ${jailed.distributed.state}; standard jail: bwrap as nobody, pids cgroup, seccomp; ${cpuNote(jailed.distributed.cpuBy, jailed.distributed.tasks)}`,
          },
          {
            runner: `taskframe embedded, jailed (${slots} slots)`,
            tasks: jailed.embedded.tasks,
            seconds: jailed.embedded.totalSeconds,
            cpuSeconds: jailed.embedded.cpuSeconds,
            peakRss: `${mb(jailed.embedded.peakRssBytes)} + spawner ${mb(jailed.embedded.spawnerPeakRssBytes)}`,
            note: `run ${jailed.embedded.state}; standard jail; ${cpuNote(jailed.embedded.cpuBy, jailed.embedded.tasks)}`,
          },
          ...(jailed.bwrap
            ? [
                {
                  runner: `bwrap /bin/true, xargs -P ${cores}`,
                  tasks,
                  ...jailed.bwrap,
                  note: "the jail's tool alone: user, pid, ipc, uts, mount namespaces, as nobody",
                },
              ]
            : []),
        ]
      : [];
    const notes = jailed
      ? []
      : [["taskframe jailed", "-", "-", "-", "-", "-", "", `not measured: ${jailProblems.join("; ")}`]];
    const data: ExecResult = {
      tasks,
      slots,
      cores,
      sidecarHelper,
      distributed,
      embedded,
      spawnerOnly: spawners,
      posixSpawnCores,
      posixSpawnSlots,
      make,
      xargs,
      ...(jailed ? { jailed } : {}),
      rows: [...rows, ...jailRows],
    };
    return {
      data,
      tables: [
        execTable(
          `exec: ${tasks} /bin/true tasks; limit = the faster posix_spawn row (${limit.toFixed(0)}/s); CPU/task: the runner's process tree, tasks included`,
          [...rows, ...jailRows],
          limit,
          notes,
        ),
      ],
    };
  },
};
