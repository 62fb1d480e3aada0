import { execFile } from "node:child_process";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { loadDefinition } from "../../core/definitions/load.js";
import { MapReduceState, type Run } from "../../core/gen/taskframe/v1/hub_pb.js";
import type { RunSpec } from "../../core/gen/taskframe/v1/spec_pb.js";
import { packagePath } from "../../core/package-root.js";
import type { HubClient } from "./engine.js";
import { until } from "./until.js";

const run = promisify(execFile);

export const EXAMPLE = (...parts: string[]) => packagePath("examples", "mapreduce", ...parts);

/** A corpus of `kib` KiB in `files` files under `dir`, by the example's generator (the same words every time). */
export async function makeCorpus(dir: string, kib: number, files = 8): Promise<string> {
  await run(EXAMPLE("make-corpus.sh"), [String(kib), dir, String(files)]);
  return dir;
}

/** The word counts by the single-process baseline: `tr | sort | uniq -c`, as `WORD<TAB>COUNT` lines sorted. */
export async function referenceCounts(corpus: string): Promise<string[]> {
  const script = `cat ${JSON.stringify(corpus)}/* | tr -cs 'A-Za-z0-9' '\\n' | grep -v '^$' | LC_ALL=C sort | uniq -c | awk '{ print $2 "\\t" $1 }'`;
  const { stdout } = await run("sh", ["-c", script], { maxBuffer: 1 << 30 });
  return stdout.split("\n").filter(Boolean);
}

export const sortedLines = async (file: string): Promise<string[]> =>
  (await readFile(file, "utf8")).split("\n").filter(Boolean).sort();

export interface JobFiles {
  dir: string;
  definition: string;
  output: string;
  work: string;
}

/**
 * A word-count job definition in `dir` over `corpus`: the example's map and
 * reduce unless replaced (`map:`/`reduce:` values as YAML), staging in `dir/work`.
 */
export async function writeJob(
  dir: string,
  corpus: string,
  fields: { partitions?: number; reducers?: number; map?: string; reduce?: string; extra?: string } = {},
): Promise<JobFiles> {
  await mkdir(dir, { recursive: true });
  const definition = join(dir, "job.yaml");
  await writeFile(
    definition,
    [
      "name: wordcount",
      "mapreduce:",
      `  input: ${JSON.stringify(corpus)}`,
      `  partitions: ${fields.partitions ?? 6}`,
      `  map: ${fields.map ?? JSON.stringify(EXAMPLE("map.sh"))}`,
      `  reducers: ${fields.reducers ?? 3}`,
      `  reduce: ${fields.reduce ?? JSON.stringify(EXAMPLE("reduce.sh"))}`,
      "  output: out/counts.txt",
      "  work: work",
      "  retries: 2",
      "  retry_interval: 200ms",
      ...(fields.extra ? [fields.extra] : []),
      "",
    ].join("\n"),
  );
  return { dir, definition, output: join(dir, "out", "counts.txt"), work: join(dir, "work") };
}

/** A shell script in `dir`, made executable; returns its path. */
export async function writeScript(dir: string, name: string, body: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return path;
}

export const compile = (definition: string): Promise<RunSpec> => loadDefinition(definition);

/** The job's state as the hub reports it, once it is committed or aborted. */
export async function settledJob(client: HubClient, runId: string, timeoutMs = 30_000): Promise<Run> {
  return until(
    async () => (await client.getRun({ runId })).run!,
    (run) =>
      run.mapreduce?.state === MapReduceState.COMMITTED || run.mapreduce?.state === MapReduceState.ABORTED,
    timeoutMs,
  );
}

/** What a job left in its directory besides the definition and the output: staging, commit leftovers. */
export async function leftovers(files: JobFiles): Promise<string[]> {
  const work = await readdir(files.work).catch(() => [] as string[]);
  const out = await readdir(join(files.dir, "out")).catch(() => [] as string[]);
  return [...work.map((n) => `work/${n}`), ...out.filter((n) => n !== "counts.txt").map((n) => `out/${n}`)];
}
