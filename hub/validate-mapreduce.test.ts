import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { MapReduceOutputKind, RunSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { validateRunSpec } from "./validate-run.js";

const JOB = "mr-0123456789abcdef";

const spec = (job: Record<string, unknown>, names = ["map-0", "reduce-0", "commit"]) =>
  create(RunSpecSchema, {
    name: "job",
    tasks: names.map((name) => ({ name, target: { case: "exec" as const, value: { command: "true" } } })),
    mapreduce: {
      jobId: JOB,
      stagingDir: `/data/work/${JOB}`,
      output: "/data/out/counts.txt",
      outputKind: MapReduceOutputKind.FILE,
      maps: 1,
      reducers: 1,
      ...job,
    },
  });

describe("the hub's check of a MapReduce job (it removes the staging directory and replaces the output)", () => {
  it("accepts what the compiler makes", () => {
    expect(() => validateRunSpec(spec({}))).not.toThrow();
  });

  it.each([
    [{ jobId: "projects" }, "job_id 'projects' is not valid"],
    [{ stagingDir: "/home/me/projects" }, "expected a normalized absolute path ending in the job id"],
    [{ stagingDir: `work/${JOB}` }, "expected a normalized absolute path ending in the job id"],
    [{ stagingDir: `/data/../etc/${JOB}` }, "expected a normalized absolute path ending in the job id"],
    [{ output: "/" }, "mapreduce.output '/' is not valid"],
    [{ output: `/data/work/${JOB}/out` }, "overlap"],
    [{ output: "/data", stagingDir: `/data/work/${JOB}` }, "overlap"],
    [{ outputKind: MapReduceOutputKind.UNSPECIFIED }, "FILE or DIRECTORY"],
    [{ reducers: 0 }, "at least one map and one reducer"],
  ])("refuses %j", (job, message) => {
    expect(() => validateRunSpec(spec(job))).toThrow(message);
  });

  it("refuses a job whose run has no commit task", () => {
    expect(() => validateRunSpec(spec({}, ["map-0", "reduce-0"]))).toThrow("no `commit` task");
  });
});
