import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";
import { recordsFile } from "./staging.js";

const NEWLINE = 0x0a;
const TAB = 0x09;
const FLUSH_AT = 1 << 20;

/** 32-bit FNV-1a of `bytes[from, to)`: which reduce partition a key goes to, the same in every SDK. */
export function fnv1a32(bytes: Uint8Array, from = 0, to = bytes.length): number {
  let hash = 0x811c9dc5;
  for (let i = from; i < to; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193) >>> 0;
  return hash;
}

/**
 * Splits a stream of records (`KEY<TAB>VALUE<LF>`) into one file per reduce
 * partition, by the hash of the key. Records are copied as bytes, never
 * decoded; writes go out in 1 MiB batches.
 */
export class RecordPartitioner {
  records = 0;
  bytes = 0;
  readonly #files: FileHandle[] = [];
  readonly #pending: Buffer[][] = [];
  readonly #pendingBytes: number[] = [];
  #partial: Buffer | undefined;

  private constructor(readonly reducers: number) {}

  /** Opens r-0 … r-(reducers-1) in `dir`; every one exists at the end, even empty. */
  static async open(dir: string, reducers: number): Promise<RecordPartitioner> {
    const partitioner = new RecordPartitioner(reducers);
    for (let r = 0; r < reducers; r++) {
      partitioner.#files.push(await open(join(dir, recordsFile(r)), "w"));
      partitioner.#pending.push([]);
      partitioner.#pendingBytes.push(0);
    }
    return partitioner;
  }

  async write(chunk: Buffer): Promise<void> {
    let data = chunk;
    if (this.#partial) {
      data = Buffer.concat([this.#partial, chunk]);
      this.#partial = undefined;
    }
    let lineStart = 0;
    for (;;) {
      const newline = data.indexOf(NEWLINE, lineStart);
      if (newline < 0) break;
      this.#route(data, lineStart, newline + 1);
      lineStart = newline + 1;
    }
    if (lineStart < data.length) this.#partial = Buffer.from(data.subarray(lineStart));
    for (let r = 0; r < this.reducers; r++) if (this.#pendingBytes[r]! >= FLUSH_AT) await this.#flush(r);
  }

  /** Writes what is left (a last record without a newline gets one) and closes the files. */
  async close(): Promise<void> {
    if (this.#partial) {
      const last = Buffer.concat([this.#partial, Buffer.from("\n")]);
      this.#partial = undefined;
      this.#route(last, 0, last.length);
    }
    try {
      for (let r = 0; r < this.reducers; r++) await this.#flush(r);
    } finally {
      await Promise.all(this.#files.map((file) => file.close()));
    }
  }

  #route(data: Buffer, from: number, to: number): void {
    if (to - from === 1) return; // an empty line is no record
    // the key's hash and the end of the key in one pass over the bytes
    let hash = 0x811c9dc5;
    for (let i = from, last = to - 1; i < last; i++) {
      const byte = data[i]!;
      if (byte === TAB) break;
      hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
    }
    const reducer = hash % this.reducers;
    this.#pending[reducer]!.push(data.subarray(from, to));
    this.#pendingBytes[reducer]! += to - from;
    this.records++;
    this.bytes += to - from;
  }

  async #flush(reducer: number): Promise<void> {
    const pending = this.#pending[reducer]!;
    if (pending.length === 0) return;
    this.#pending[reducer] = [];
    this.#pendingBytes[reducer] = 0;
    await this.#files[reducer]!.write(Buffer.concat(pending));
  }
}
