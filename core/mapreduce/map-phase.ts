import { pipeline } from "node:stream/promises";
import { inAttemptDir } from "./attempt.js";
import { allSteps, countNewlines, ignoreClosedPipe, startCommand } from "./commands.js";
import type { MapDescriptor } from "./descriptor.js";
import { readLineRanges } from "./line-ranges.js";
import { RecordPartitioner } from "./record-partitioner.js";

/**
 * One map attempt with executables: the partition's lines into `map`, its
 * records (through `sort | combine` when there is a combiner) split by key
 * hash into one file per reduce partition, published if no other attempt was first.
 */
export function runMapPhase(descriptor: MapDescriptor, attempt: number, signal: AbortSignal) {
  const { staging, partition } = descriptor;
  return inAttemptDir({ staging, phase: "map", partition, attempt }, async (dir) => {
    const stop = new AbortController();
    const stopping = AbortSignal.any([signal, stop.signal]);
    const partitioner = await RecordPartitioner.open(dir, descriptor.reducers);
    let recordsIn = 0;
    async function* input() {
      const chunks = descriptor.keys
        ? [Buffer.from(descriptor.keys.map((key) => `${key}\n`).join(""))]
        : readLineRanges(descriptor.input ?? [], stopping);
      for await (const chunk of chunks) {
        recordsIn += countNewlines(chunk);
        yield chunk;
      }
    }
    const map = startCommand("map", descriptor.command ?? [], stopping);
    const steps: Promise<unknown>[] = [map.exited, pipeline(input, map.child.stdin).catch(ignoreClosedPipe)];
    let records = map.child.stdout;
    if (descriptor.combine) {
      const sort = startCommand("sort", ["sort"], stopping, { ...process.env, LC_ALL: "C" });
      const combine = startCommand("combine", descriptor.combine, stopping);
      steps.push(
        sort.exited,
        combine.exited,
        pipeline(records, sort.child.stdin),
        pipeline(sort.child.stdout, combine.child.stdin),
      );
      records = combine.child.stdout;
    }
    steps.push(
      (async () => {
        try {
          for await (const chunk of records) await partitioner.write(chunk as Buffer);
        } finally {
          await partitioner.close();
        }
      })(),
    );
    await allSteps(steps, stop);
    return { records_in: recordsIn, records_out: partitioner.records, bytes_out: partitioner.bytes };
  });
}
