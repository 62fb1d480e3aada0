import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MapReduceOutputKind } from "../gen/taskframe/v1/spec_pb.js";
import { parseDescriptor } from "../mapreduce/descriptor.js";
import { compilePipeline } from "./yaml-pipeline.js";

const yaml = (...lines: string[]): string => `${lines.join("\n")}\n`;

describe("a pipeline's mapreduce: block", () => {
  let dir: string;
  let file: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "taskframe-mr-definition-"));
    file = join(dir, "job.yaml");
    await writeFile(join(dir, "input.txt"), "a b\nc d\ne f\n");
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const job = (...lines: string[]) =>
    yaml(
      "name: wc",
      "mapreduce:",
      "  input: input.txt",
      "  map: ./map.sh --fast",
      "  reduce: ./reduce.sh",
      ...lines,
    );

  it("makes map-N, reduce-N (needing every map) and commit (needing every reduce)", async () => {
    const spec = await compilePipeline(
      job("  partitions: 2", "  reducers: 3", "  output: out/counts.txt"),
      file,
    );
    expect(spec.tasks.map((t) => [t.name, t.needs])).toEqual([
      ["map-0", []],
      ["map-1", []],
      ["reduce-0", ["map-0", "map-1"]],
      ["reduce-1", ["map-0", "map-1"]],
      ["reduce-2", ["map-0", "map-1"]],
      ["commit", ["reduce-0", "reduce-1", "reduce-2"]],
    ]);
    const map = spec.tasks[0]!.target;
    if (map.case !== "exec") throw new Error("expected an exec map");
    expect(map.value).toMatchObject({ builtin: true, command: "mapreduce", cwd: dir });
    expect(map.value.args[0]).toBe("map");
    const descriptor = parseDescriptor(map.value.args[1]!);
    expect(descriptor).toMatchObject({
      phase: "map",
      partition: 0,
      reducers: 3,
      command: [join(dir, "map.sh"), "--fast"],
      input: [{ path: join(dir, "input.txt"), start: 0 }],
    });
    expect(spec.mapreduce).toMatchObject({
      output: join(dir, "out", "counts.txt"),
      outputKind: MapReduceOutputKind.FILE,
      maps: 2,
      reducers: 3,
    });
    expect(spec.mapreduce!.stagingDir).toBe(join(dir, ".taskframe-staging", spec.mapreduce!.jobId));
  });

  it("hands handlers the descriptor as input, and takes a trailing / as a directory output", async () => {
    const spec = await compilePipeline(
      yaml(
        "mapreduce:",
        "  input: { keys: [s3://b/1, s3://b/2, s3://b/3] }",
        "  map: { handler: wc.map }",
        "  reduce: { handler: wc.reduce }",
        "  output: out/",
      ),
      file,
    );
    expect(spec.tasks.filter((t) => t.name.startsWith("map-"))).toHaveLength(3);
    const target = spec.tasks[1]!.target;
    if (target.case !== "handler") throw new Error("expected a handler map");
    expect(target.value.handler).toBe("wc.map");
    expect(JSON.parse(new TextDecoder().decode(target.value.input))).toMatchObject({ keys: ["s3://b/2"] });
    expect(spec.mapreduce).toMatchObject({
      output: join(dir, "out"),
      outputKind: MapReduceOutputKind.DIRECTORY,
    });
  });

  it("says what is wrong, where", async () => {
    await expect(
      compilePipeline(yaml("mapreduce:", "  input: input.txt", "  reduce: ./r"), file),
    ).rejects.toThrow(
      /job\.yaml:2:3: mapreduce\.map: missing; expected the map: a command, \{ run: COMMAND \} or \{ handler: NAME \}/,
    );
    await expect(compilePipeline(job("  output: o", "  reducers: 0"), file)).rejects.toThrow(
      /mapreduce\.reducers: expected the number of reduce partitions, from 1 to 10000/,
    );
    await expect(
      compilePipeline(
        yaml("mapreduce:", "  input: nowhere/", "  map: ./m", "  reduce: ./r", "  output: o"),
        file,
      ),
    ).rejects.toThrow(/mapreduce\.input: cannot read the input .*nowhere/);
    await expect(
      compilePipeline(`${job("  output: o")}tasks: { a: { run: "true" } }\n`, file),
    ).rejects.toThrow(/a MapReduce pipeline has no `tasks:` or `steps:`/);
    await expect(
      compilePipeline(`${job("  output: o")}schedule: { cron: "0 * * * *" }\n`, file),
    ).rejects.toThrow(/a MapReduce job cannot be scheduled yet/);
  });
});
