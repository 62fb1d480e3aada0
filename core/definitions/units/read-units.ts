import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { DefinitionError, errorMessage } from "../../errors.js";

/** A unit file's name and text (or why it could not be read), for building a catalogue. */
export type UnitText = { fileName: string; text: string } | { fileName: string; unreadable: DefinitionError };

/** Below this many files a reader thread costs more than it saves. */
const THREAD_FROM = 2000;
const BATCH = 500;

const unreadable = (dir: string, fileName: string, reason: string): UnitText => ({
  fileName,
  unreadable: new DefinitionError({ file: join(dir, fileName) }, `cannot read unit file: ${reason}`),
});

/** Reads one unit file; a file that cannot be read is a problem like any other. */
export function readUnitText(dir: string, fileName: string): UnitText {
  try {
    return { fileName, text: readFileSync(join(dir, fileName), "utf8") };
  } catch (cause) {
    return unreadable(dir, fileName, errorMessage(cause));
  }
}

// Synchronous reads: for many small files they are several times faster than fs/promises. The
// thread is plain JavaScript, so that it runs the same from sources and from dist/.
const READER = `
const { parentPort, workerData } = require("node:worker_threads");
const { readFileSync } = require("node:fs");
const { join } = require("node:path");
const { dir, fileNames, batch } = workerData;
for (let start = 0; start < fileNames.length; start += batch) {
  const texts = [];
  for (const fileName of fileNames.slice(start, start + batch)) {
    try {
      texts.push({ text: readFileSync(join(dir, fileName), "utf8") });
    } catch (error) {
      texts.push({ error: error instanceof Error ? error.message : String(error) });
    }
  }
  parentPort.postMessage(texts);
}
`;

type Batch = ({ text: string } | { error: string })[];

/**
 * The texts of `fileNames`, in order, in batches. Large directories are read by a thread of their
 * own while the caller parses what has arrived, which takes about a quarter off loading 50,000
 * units.
 */
export async function* readUnitTexts(dir: string, fileNames: readonly string[]): AsyncGenerator<UnitText[]> {
  if (fileNames.length < THREAD_FROM) {
    yield fileNames.map((fileName) => readUnitText(dir, fileName));
    return;
  }
  const batches: Batch[] = [];
  let failure: unknown;
  let stopped = false;
  let wake: (() => void) | undefined;
  const worker = new Worker(READER, { eval: true, workerData: { dir, fileNames, batch: BATCH } });
  worker.on("message", (batch: Batch) => {
    batches.push(batch);
    wake?.();
  });
  worker.on("error", (error) => {
    failure = error;
    wake?.();
  });
  worker.on("exit", () => {
    stopped = true;
    wake?.();
  });
  let next = 0;
  try {
    while (next < fileNames.length) {
      const batch = batches.shift();
      if (batch) {
        yield batch.map((item) => {
          const fileName = fileNames[next++]!;
          return "text" in item ? { fileName, text: item.text } : unreadable(dir, fileName, item.error);
        });
        continue;
      }
      if (failure !== undefined || stopped) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  } finally {
    await worker.terminate();
  }
  // Should the thread fail (it should not), the rest is read here.
  if (next < fileNames.length) yield fileNames.slice(next).map((fileName) => readUnitText(dir, fileName));
}
