import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { RunSpecSchema, TaskSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { packagePath } from "../core/package-root.js";
import { EmbeddedEngine } from "../embedded/engine.js";
import { procSample } from "./proc-stats.js";
import { mb, type Scenario, type ThroughputRow, throughputTable } from "./scenario.js";
import { submitAndWait, type Timed, trueTasks } from "./workloads.js";

type Kind = "handler" | "exec";

export interface EmbeddedApiResult extends Timed {
  kind: Kind;
  /** This process's peak RSS so far (the engine runs in it; cumulative over the scenario). */
  processPeakRssBytes: number;
  /** EmbeddedEngine.open on a fresh data directory (PGlite start, migrations). */
  openSeconds: number;
  /** engine.close() after the run. */
  closeSeconds: number;
}

export interface EmbeddedCliResult {
  kind: Kind;
  tasks: number;
  state: string;
  /** Launch of `task run` to its exit: PGlite start-up, migrations, workers, run and close. */
  wallSeconds: number;
  /** The run's created_at to finished_at. */
  runSeconds: number;
  /** Launch to the run's created_at: start-up (PGlite, migrations, loading the file). */
  startupSeconds: number;
  /** The run's finished_at to the exit: the report and close. */
  exitSeconds: number;
  /** A one-task `task run` in the fresh data directory before (PGlite initdb): launch to exit. */
  firstRunWallSeconds: number;
  firstRunPeakRssBytes: number | undefined;
  peakRssBytes: number | undefined;
  exitCode: number | null;
}

const noopWorkerPool = (concurrency: number) => ({
  name: "ts",
  command: process.execPath,
  args: [packagePath("bench/workers/noop.mjs")],
  instances: 1,
  env: { BENCH_CONCURRENCY: String(concurrency) },
  cwd: packagePath("."),
});

const handlerTasks = (count: number, name = "bench") =>
  create(RunSpecSchema, {
    name,
    tasks: Array.from({ length: count }, (_, i) =>
      create(TaskSpecSchema, { name: `h${i}`, target: { case: "handler", value: { handler: "noop" } } }),
    ),
  });

/** `count` tasks through an EmbeddedEngine in this process, as `task run` wires it (PGlite). */
export async function embeddedApiRun(
  kind: Kind,
  count: number,
  options: { slots: number; concurrency: number },
): Promise<EmbeddedApiResult> {
  const dir = mkdtempSync(join(tmpdir(), "taskframe-bench-"));
  const opening = performance.now();
  const engine = await EmbeddedEngine.open({
    dataDir: join(dir, "data"),
    slots: options.slots,
    ...(kind === "handler" ? { workerPools: [noopWorkerPool(options.concurrency)] } : {}),
  });
  const openSeconds = (performance.now() - opening) / 1000;
  let closeSeconds = 0;
  try {
    const client = engine.client();
    // the worker connects, PGlite warms up: not timed
    if (kind === "handler") await submitAndWait(client, handlerTasks(20, "warmup"));
    else await submitAndWait(client, trueTasks(20, "independent", dir));
    const spec = kind === "handler" ? handlerTasks(count) : trueTasks(count, "independent", dir);
    const timed = await submitAndWait(client, spec);
    const closing = performance.now();
    await engine.close();
    closeSeconds = (performance.now() - closing) / 1000;
    return {
      ...timed,
      kind,
      processPeakRssBytes: process.resourceUsage().maxRSS * 1024,
      openSeconds,
      closeSeconds,
    };
  } finally {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface TaskRunExit {
  wallSeconds: number;
  launchedAt: number;
  exitedAt: number;
  exitCode: number | null;
  peakRssBytes: number | undefined;
  report: { run: { state: string; created_at: string; finished_at: string | null } };
}

/** `task run FILE --json` in `cwd`, to its exit, with the process's peak RSS. */
async function taskRun(cwd: string, file: string, dataDir: string, slots: number): Promise<TaskRunExit> {
  const started = performance.now();
  const launchedAt = Date.now();
  const child = spawn(
    process.execPath,
    [packagePath("bin/task.js"), "run", file, "--data", dataDir, "--slots", String(slots), "--json"],
    { cwd, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (data: Buffer) => {
    stdout += data.toString();
  });
  child.stderr.on("data", (data: Buffer) => {
    stderr += data.toString();
  });
  let peakRssBytes: number | undefined;
  const poll = setInterval(() => {
    const sample = child.pid === undefined ? undefined : procSample(child.pid);
    // a process on its way out has no VmHWM any more: keep the highest seen
    if (sample?.hwmBytes) peakRssBytes = Math.max(peakRssBytes ?? 0, sample.hwmBytes);
  }, 200);
  const exitCode = await new Promise<number | null>((resolve) => child.once("close", resolve));
  clearInterval(poll);
  const wallSeconds = (performance.now() - started) / 1000;
  try {
    return {
      wallSeconds,
      launchedAt,
      exitedAt: Date.now(),
      exitCode,
      peakRssBytes,
      report: JSON.parse(stdout),
    };
  } catch {
    throw new Error(`task run exited ${exitCode} without its JSON report:\n${stderr.slice(-2000)}`);
  }
}

/**
 * `task run FILE` as a user runs it: a pipeline of `count` tasks made with
 * for_each, on a data directory that a one-task run made first (PGlite's
 * initdb happens once per directory; that first run is timed apart).
 */
export async function embeddedCliRun(
  kind: Kind,
  count: number,
  options: { slots: number; concurrency: number },
): Promise<EmbeddedCliResult> {
  const dir = mkdtempSync(join(tmpdir(), "taskframe-bench-"));
  try {
    writeFileSync(join(dir, "items.txt"), `${Array.from({ length: count }, (_, i) => i).join("\n")}\n`);
    writeFileSync(join(dir, "first.yaml"), "name: first\ntasks:\n  t:\n    run: /bin/true\n");
    const pool = noopWorkerPool(options.concurrency);
    const pipeline =
      kind === "handler"
        ? [
            "name: bench-handlers",
            "workers:",
            "  ts:",
            `    run: ${JSON.stringify([pool.command, ...pool.args])}`,
            `    env: { BENCH_CONCURRENCY: "${options.concurrency}" }`,
            `    cwd: ${JSON.stringify(pool.cwd)}`,
            "tasks:",
            "  h:",
            "    handler: noop",
            "    for_each: { file: items.txt }",
          ]
        : ["name: bench-exec", "tasks:", "  t:", "    run: /bin/true", "    for_each: { file: items.txt }"];
    writeFileSync(join(dir, "pipeline.yaml"), `${pipeline.join("\n")}\n`);
    const dataDir = join(dir, "data");
    const first = await taskRun(dir, join(dir, "first.yaml"), dataDir, options.slots);
    const exit = await taskRun(dir, join(dir, "pipeline.yaml"), dataDir, options.slots);
    const createdAt = Date.parse(exit.report.run.created_at);
    const finishedAt = exit.report.run.finished_at ? Date.parse(exit.report.run.finished_at) : exit.exitedAt;
    return {
      kind,
      tasks: count,
      state: exit.report.run.state,
      wallSeconds: exit.wallSeconds,
      runSeconds: (finishedAt - createdAt) / 1000,
      startupSeconds: (createdAt - exit.launchedAt) / 1000,
      exitSeconds: (exit.exitedAt - finishedAt) / 1000,
      peakRssBytes: exit.peakRssBytes,
      exitCode: exit.exitCode,
      firstRunWallSeconds: first.wallSeconds,
      firstRunPeakRssBytes: first.peakRssBytes,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The machine's own rate of starting /bin/true, `slots` at a time: the ceiling of exec tasks. */
async function xargsTrue(count: number, slots: number): Promise<number> {
  const started = performance.now();
  const child = spawn("sh", ["-c", `seq ${count} | xargs -P ${slots} -n 1 /bin/true`], { stdio: "ignore" });
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  if (code !== 0) throw new Error(`xargs exited ${code}`);
  return (performance.now() - started) / 1000;
}

export const embeddedScenario: Scenario = {
  name: "embedded",
  summary:
    "N no-op handler tasks (a TS worker) and N /bin/true tasks in embedded mode on PGlite, through the\nEmbeddedEngine API and through `task run FILE` (default 1000)",
  async run({ tasks = 1_000, slots, concurrency, progress }) {
    const options = { slots, concurrency };
    progress(`  EmbeddedEngine: ${tasks} handler tasks ...`);
    const apiHandler = await embeddedApiRun("handler", tasks, options);
    progress(`  EmbeddedEngine: ${tasks} /bin/true tasks ...`);
    const apiExec = await embeddedApiRun("exec", tasks, options);
    progress(`  task run: ${tasks} handler tasks ...`);
    const cliHandler = await embeddedCliRun("handler", tasks, options);
    progress(`  task run: ${tasks} /bin/true tasks ...`);
    const cliExec = await embeddedCliRun("exec", tasks, options);
    progress(`  xargs -P ${slots} /bin/true ...`);
    const xargsSeconds = await xargsTrue(tasks, slots);
    const apiRow = (r: EmbeddedApiResult, runner: string): ThroughputRow => ({
      runner,
      tasks: r.tasks,
      seconds: r.totalSeconds,
      peakRss: `${mb(r.processPeakRssBytes)} (bench process)`,
      note: `run ${r.state}; submit ${r.submitSeconds.toFixed(2)}s; not timed: open ${r.openSeconds.toFixed(1)} s, a 20-task warm-up, close ${r.closeSeconds.toFixed(1)} s`,
    });
    const cliRow = (r: EmbeddedCliResult, runner: string): ThroughputRow => ({
      runner,
      tasks: r.tasks,
      seconds: r.runSeconds,
      peakRss: mb(r.peakRssBytes),
      note: `run ${r.state}; whole command ${r.wallSeconds.toFixed(1)} s (${(r.tasks / r.wallSeconds).toFixed(0)} tasks/s): start-up ${r.startupSeconds.toFixed(1)} s, report and close ${r.exitSeconds.toFixed(1)} s; a 1-task run in the fresh data dir took ${r.firstRunWallSeconds.toFixed(1)} s, peak ${mb(r.firstRunPeakRssBytes)}`,
    });
    return {
      data: { apiHandler, apiExec, cliHandler, cliExec, xargsSeconds },
      tables: [
        throughputTable(
          `embedded: ${tasks} tasks on PGlite, ${slots} slots, TS worker at concurrency ${concurrency}`,
          [
            apiRow(apiHandler, "EmbeddedEngine, no-op handler tasks"),
            apiRow(apiExec, "EmbeddedEngine, /bin/true tasks"),
            cliRow(cliHandler, "task run FILE, no-op handler tasks"),
            cliRow(cliExec, "task run FILE, /bin/true tasks"),
            {
              runner: `peer: xargs -P ${slots} /bin/true`,
              tasks,
              seconds: xargsSeconds,
              note: "the machine's process start rate, nothing recorded",
            },
          ],
        ),
      ],
    };
  },
};
