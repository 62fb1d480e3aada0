import { z } from "zod";
import { TaskframeError, TaskframeErrorCode } from "../errors.js";

/*
 * What one map or reduce task is told (docs/mapreduce.md, "Staging layout and
 * descriptors"): the executable wrapper gets it as an argument, a handler as
 * its input. Checked at this edge like every user-facing format.
 */

const absolute = z.string().regex(/^\//, "expected an absolute path");
const argv = z.array(z.string()).min(1, "expected a command and its arguments");
const partition = z.number().int().min(0);

export const inputRangeSchema = z.strictObject({
  path: absolute,
  start: z.number().int().min(0),
  end: z.number().int().min(0),
});
export type InputRange = z.infer<typeof inputRangeSchema>;

const common = {
  job: z.string().min(1),
  staging: absolute,
  partition,
  command: argv.optional(),
};

export const mapDescriptorSchema = z
  .strictObject({
    ...common,
    phase: z.literal("map"),
    reducers: z.number().int().min(1),
    input: z.array(inputRangeSchema).optional(),
    keys: z.array(z.string()).optional(),
    combine: argv.optional(),
  })
  .refine((d) => (d.input === undefined) !== (d.keys === undefined), {
    message: "expected `input` (byte ranges) or `keys`, exactly one of them",
  });
export type MapDescriptor = z.infer<typeof mapDescriptorSchema>;

export const reduceDescriptorSchema = z.strictObject({
  ...common,
  phase: z.literal("reduce"),
  maps: z.number().int().min(1),
});
export type ReduceDescriptor = z.infer<typeof reduceDescriptorSchema>;

const invalid = (message: string) => new TaskframeError(TaskframeErrorCode.InvalidArgument, message);

/** A descriptor from its JSON text; a message naming the wrong field otherwise (TaskframeError). */
export function parseDescriptor(text: string): MapDescriptor | ReduceDescriptor {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw invalid(`the MapReduce descriptor is not JSON: ${(error as Error).message}`);
  }
  const phase = (raw as { phase?: unknown } | null)?.phase;
  if (phase !== "map" && phase !== "reduce") {
    throw invalid(
      `the MapReduce descriptor is not valid: phase: expected "map" or "reduce", got ${JSON.stringify(phase)}`,
    );
  }
  const parsed = (phase === "map" ? mapDescriptorSchema : reduceDescriptorSchema).safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`);
    throw invalid(`the MapReduce descriptor is not valid: ${problems.join("; ")}`);
  }
  return parsed.data;
}
