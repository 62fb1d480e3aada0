import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { loadDefinition } from "../core/definitions/load.js";
import { HubService } from "../core/gen/taskframe/v1/hub_pb.js";
import { packagePath } from "../core/package-root.js";
import { RunState, TaskState } from "../core/states.js";
import { startLocalCluster } from "../embedded/local-cluster.js";
import { createScratchDatabase } from "../hub/store/scratch-database.js";
import type { BenchContext, Scenario } from "./scenario.js";

const run = promisify(execFile);
const example = (name: string) => packagePath("examples", "mapreduce", name);
const SIDECARS = 3;
const SLOTS = 2;

interface MapReduceRow {
  runner: string;
  seconds: number;
  matches: boolean;
  note: string;
}

export const mapReduceScenario: Scenario = {
  name: "mapreduce",
  summary:
    "word count over a generated corpus (--tasks N: MiB, default 200): a MapReduce job on 1 hub + 3\n" +
    "sidecars (examples/mapreduce) against single-process pipelines: tr + sort + uniq -c, and tr + awk",
  async run(context) {
    const mib = context.tasks ?? (context.partOfAll ? 50 : 200);
    const dir = mkdtempSync(join(tmpdir(), "taskframe-bench-mapreduce-"));
    // jailed tasks run as another account: they must reach the job's directory
    chmodSync(dir, 0o755);
    try {
      const corpus = join(dir, "corpus");
      context.progress(`  generating a ${mib} MiB corpus ...`);
      await run(example("make-corpus.sh"), [String(mib * 1024), corpus, "16"]);
      const rows: MapReduceRow[] = [];
      context.progress("  sort | uniq -c (one process pipeline) ...");
      const sortUniq = await timed(() =>
        shell(
          `cat ${corpus}/* | tr -cs 'A-Za-z0-9' '\\n' | grep -v '^$' | LC_ALL=C sort | uniq -c | awk '{ print $2 "\\t" $1 }' > ${dir}/reference.txt`,
        ),
      );
      const reference = await sortedLines(join(dir, "reference.txt"));
      rows.push({ runner: "tr + sort + uniq -c", seconds: sortUniq, matches: true, note: "the reference" });
      context.progress("  tr | awk (one process, a hash table) ...");
      const awk = await timed(() =>
        shell(
          `cat ${corpus}/* | tr -cs 'A-Za-z0-9' '\\n' | awk 'NF { n[$0]++ } END { for (w in n) print w "\\t" n[w] }' > ${dir}/awk.txt`,
        ),
      );
      rows.push({
        runner: "tr + awk",
        seconds: awk,
        matches: sameLines(reference, await sortedLines(join(dir, "awk.txt"))),
        note: "the map's own algorithm, unsplit",
      });
      const partitions = Math.max(SIDECARS * SLOTS, Math.ceil(mib / 32));
      context.progress(`  Taskframe MapReduce: ${partitions} maps, 3 reducers on ${SIDECARS} sidecars ...`);
      const job = await clusterJob(context, dir, corpus, partitions);
      rows.push({
        runner: `Taskframe (${SIDECARS} sidecars x ${SLOTS} slots)`,
        seconds: job.seconds,
        matches: sameLines(reference, await sortedLines(job.output)),
        note: `${partitions} maps, 3 reducers, committed; ${job.state}`,
      });
      const bytes = mib * 2 ** 20;
      return {
        tables: [
          {
            title: `Word count over ${mib} MiB (${reference.length} distinct words), same corpus, same run`,
            header: ["runner", "seconds", "MiB/s", "same counts as the reference", "note"],
            rows: rows.map((r) => [
              r.runner,
              r.seconds.toFixed(1),
              (bytes / 2 ** 20 / r.seconds).toFixed(1),
              r.matches ? "yes" : "NO",
              r.note,
            ]),
          },
        ],
        data: { mib, partitions, distinctWords: reference.length, rows },
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

async function clusterJob(
  context: Pick<BenchContext, "db" | "nats">,
  dir: string,
  corpus: string,
  partitions: number,
) {
  const database = await createScratchDatabase(context.db, "taskframe_bench");
  // the sidecars' own files (ledgers, sockets), which their jail hides from tasks, apart from the job's
  const clusterDir = mkdtempSync(join(tmpdir(), "taskframe-bench-cluster-"));
  const cluster = await startLocalCluster({
    dbUrl: database.url,
    natsUrl: context.nats,
    namespace: `bench${randomBytes(4).toString("hex")}`,
    dir: clusterDir,
    hubs: 1,
    sidecars: SIDECARS,
    // each map is a pipeline of processes (tr, awk, the wrapper): two per sidecar keep 2 cores busy
    slots: SLOTS,
    logLevel: "error",
  });
  try {
    const definition = join(dir, "wordcount.yaml");
    writeFileSync(
      definition,
      [
        "name: bench-wordcount",
        "mapreduce:",
        `  input: ${JSON.stringify(corpus)}`,
        `  partitions: ${partitions}`,
        `  map: ${JSON.stringify(example("map.sh"))}`,
        "  reducers: 3",
        `  reduce: ${JSON.stringify(example("reduce.sh"))}`,
        "  output: out/counts.txt",
        "  retries: 2",
        "",
      ].join("\n"),
    );
    const client = createClient(
      HubService,
      createConnectTransport({ baseUrl: cluster.hubUrls[0]!, httpVersion: "1.1" }),
    );
    const spec = await loadDefinition(definition);
    const started = performance.now();
    const { run: submitted } = await client.submitRun({ run: spec });
    for await (const _ of client.watchRun({ runId: submitted!.id })) {
      // until the run ends (its last task is the commit)
    }
    const seconds = (performance.now() - started) / 1000;
    const { run: final } = await client.getRun({ runId: submitted!.id });
    if (final?.state !== RunState.SUCCEEDED) {
      const { tasks } = await client.listTasks({ runId: submitted!.id });
      const failed = tasks.find((t) => t.state === TaskState.FAILED || t.state === TaskState.CHECK_FAILED);
      let log = "";
      for await (const part of client.getLogs({ task: { taskId: failed?.id ?? "" } })) {
        for (const entry of part.entries) log += Buffer.from(entry.data).toString();
      }
      throw new Error(
        `the MapReduce job did not succeed (${final?.mapreduce?.detail}); the log of ${failed?.name}:\n${log}`,
      );
    }
    return { seconds, output: join(dir, "out", "counts.txt"), state: RunState[final!.state] ?? "?" };
  } finally {
    await cluster.stop();
    await cluster.deleteStreams().catch(() => {});
    await database[Symbol.asyncDispose]();
    rmSync(clusterDir, { recursive: true, force: true });
  }
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
}

const shell = (script: string) => run("sh", ["-c", script], { maxBuffer: 1 << 20 });

const sortedLines = async (file: string) => (await readFile(file, "utf8")).split("\n").filter(Boolean).sort();

const sameLines = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((line, i) => line === b[i]);
