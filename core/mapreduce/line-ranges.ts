import { createReadStream } from "node:fs";
import type { InputRange } from "./descriptor.js";

const NEWLINE = 0x0a;

/**
 * The bytes of the lines that begin in `[start, end)` of a file, each ending
 * with a newline (one is added after a last line without one). A line that
 * begins inside and runs past `end` is read to its end; the line that `start`
 * falls into belongs to the range before. So a file can be cut at any byte.
 */
export async function* readLineRange(range: InputRange, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const { path, start, end } = range;
  if (end <= start) return;
  // from the byte before `start`: if it is a newline, a line begins exactly at `start`
  let position = start === 0 ? 0 : start - 1;
  let skipping = start !== 0;
  let lastByte = NEWLINE;
  const stream = createReadStream(path, { start: position, highWaterMark: 1 << 20, signal });
  try {
    for await (const read of stream as AsyncIterable<Buffer>) {
      let chunk = read;
      if (skipping) {
        const newline = chunk.indexOf(NEWLINE);
        if (newline < 0) {
          position += chunk.length;
          continue;
        }
        skipping = false;
        position += newline + 1;
        chunk = chunk.subarray(newline + 1);
        if (position >= end) return;
      }
      // the first newline at or after end - 1 ends the last line that began before `end`
      const stopFrom = Math.max(0, end - 1 - position);
      const newline = stopFrom < chunk.length ? chunk.indexOf(NEWLINE, stopFrom) : -1;
      if (newline >= 0) {
        yield chunk.subarray(0, newline + 1);
        return;
      }
      if (chunk.length > 0) {
        lastByte = chunk[chunk.length - 1]!;
        yield chunk;
      }
      position += chunk.length;
    }
  } finally {
    stream.destroy();
  }
  if (!skipping && lastByte !== NEWLINE) yield Buffer.from("\n");
}

/** Every range's lines, in order. */
export async function* readLineRanges(ranges: readonly InputRange[], signal?: AbortSignal) {
  for (const range of ranges) yield* readLineRange(range, signal);
}
