import { z } from "zod";
import { commandOf, expecting, HANDLER_NAME, settingsSchema } from "./pipeline-schema.js";

/** A map or reduce: a command (string or argv list), or an SDK handler. */
const step = (what: string) =>
  z
    .unknown()
    .refine((value) => value !== undefined, {
      message: `missing; expected the ${what}: a command, { run: COMMAND } or { handler: NAME }`,
    })
    .pipe(
      z.union(
        [
          commandOf(),
          z.strictObject({ run: commandOf() }),
          z.strictObject({
            handler: z.string().regex(HANDLER_NAME, expecting("a handler name such as wordcount.map")),
          }),
        ],
        expecting(`the ${what}: a command, { run: COMMAND } or { handler: NAME }`),
      ),
    );

const count = (what: string, max: number) =>
  z
    .int(expecting(`the number of ${what}, from 1 to ${max}`))
    .min(1, expecting(`the number of ${what}, from 1 to ${max}`))
    .max(max, expecting(`the number of ${what}, from 1 to ${max}`));

/** A pipeline's `mapreduce:` block (docs/mapreduce.md). */
export const mapReduceSchema = z.strictObject(
  {
    ...settingsSchema.shape,
    input: z.union(
      [
        z.string().min(1),
        z.strictObject({ keys: z.array(z.string().min(1)).min(1, expecting("a non-empty list of keys")) }),
      ],
      expecting("a file or directory path, or { keys: [KEY, ...] }"),
    ),
    partitions: count("map partitions", 100_000).optional(),
    map: step("map"),
    combine: commandOf().optional(),
    reducers: count("reduce partitions", 10_000).optional(),
    reduce: step("reduce"),
    output: z.string(expecting("the output's path")).min(1, expecting("the output's path")),
    work: z.string(expecting("a directory path")).min(1, expecting("a directory path")).optional(),
  },
  expecting("a map with `input:`, `map:`, `reduce:` and `output:`"),
);

export type MapReduceFields = z.output<typeof mapReduceSchema>;
