import { createWriteStream } from "node:fs";
import { access, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { inAttemptDir } from "./attempt.js";
import { allSteps, countNewlines, ignoreClosedPipe, startCommand } from "./commands.js";
import type { ReduceDescriptor } from "./descriptor.js";
import { doneDir, REDUCE_OUTPUT, recordsFile } from "./staging.js";

/**
 * One reduce attempt with executables: every map's records for this
 * partition, sorted bytewise by `sort` (which spills to the attempt's
 * directory, not to the jail's small /tmp), into `reduce`; its stdout is the
 * partition's output.
 */
export function runReducePhase(descriptor: ReduceDescriptor, attempt: number, signal: AbortSignal) {
  const { staging, partition } = descriptor;
  return inAttemptDir({ staging, phase: "reduce", partition, attempt }, async (dir) => {
    const inputs: string[] = [];
    for (let p = 0; p < descriptor.maps; p++) {
      const file = join(doneDir(staging, "map", p), recordsFile(partition));
      await access(file).catch(() => {
        throw new Error(
          `map partition ${p} has no records for reduce partition ${partition} (${file} is missing)`,
        );
      });
      inputs.push(file);
    }
    const list = join(dir, "inputs");
    await writeFile(list, inputs.map((file) => `${file}\0`).join(""));
    const stop = new AbortController();
    const stopping = AbortSignal.any([signal, stop.signal]);
    const sort = startCommand("sort", ["sort", "-T", dir, `--files0-from=${list}`], stopping, {
      ...process.env,
      LC_ALL: "C",
    });
    sort.child.stdin.end();
    const reduce = startCommand("reduce", descriptor.command ?? [], stopping);
    const recordsIn = newlineCounter();
    const recordsOut = newlineCounter();
    const steps = [
      sort.exited,
      reduce.exited,
      pipeline(sort.child.stdout, recordsIn.transform, reduce.child.stdin).catch(ignoreClosedPipe),
      pipeline(reduce.child.stdout, recordsOut.transform, createWriteStream(join(dir, REDUCE_OUTPUT))),
    ];
    await allSteps(steps, stop);
    return { records_in: recordsIn.lines, records_out: recordsOut.lines, bytes_out: recordsOut.bytes };
  });
}

function newlineCounter() {
  const counter = {
    lines: 0,
    bytes: 0,
    transform: new Transform({
      transform(chunk: Buffer, _encoding, done) {
        counter.lines += countNewlines(chunk);
        counter.bytes += chunk.length;
        done(null, chunk);
      },
    }),
  };
  return counter;
}
