/**
 * Per-attempt output capture: turns the raw bytes a task writes into LogChunks
 * (see proto/taskframe/v1/messages.proto). Bytes are kept exactly as written,
 * cut at line boundaries where possible, and capped per attempt.
 */

export type OutputStream = "stdout" | "stderr";
export type CapturedStream = OutputStream | "system";

export interface LogCaptureOptions {
  /** Most bytes kept per attempt, stdout and stderr together; the rest is counted as dropped. */
  maxBytes: number;
  /** Largest chunk: a line longer than this goes out in pieces of this size. */
  chunkBytes: number;
  /** Wall clock in Unix milliseconds; Date.now by default. */
  now?: () => number;
}

export interface CapturedChunk {
  stream: CapturedStream;
  /** Per stream, from 0; the system stream counts on its own. */
  seq: number;
  /** When the first byte of this chunk arrived. */
  atUnixMs: number;
  data: Uint8Array;
  /** Set on the truncation marker only: bytes dropped past the cap. */
  droppedBytes: number;
}

const NEWLINE = 0x0a;
// Smallest pending buffer: growing from here keeps idle and chatty-but-short streams cheap.
const MIN_BUFFER_BYTES = 4096;

/** One stream's bytes not yet cut into a chunk: at most chunkBytes of them. */
class PendingBytes {
  readonly #stream: OutputStream;
  readonly #chunkBytes: number;
  #seq = 0;
  #buffer: Buffer | undefined;
  #length = 0;
  /** Index just past the last newline in the buffer, 0 when there is none. */
  #lineEnd = 0;
  // Arrival times: bytes from #markOffsets[i] on arrived at #markTimes[i]. The first offset is 0.
  #markOffsets: number[] = [];
  #markTimes: number[] = [];

  constructor(stream: OutputStream, chunkBytes: number) {
    this.#stream = stream;
    this.#chunkBytes = chunkBytes;
  }

  /** Copies `data` in, cutting a chunk into `out` each time the buffer fills up. */
  write(data: Uint8Array, atUnixMs: number, out: CapturedChunk[]): void {
    let offset = 0;
    while (offset < data.length) {
      const count = Math.min(this.#chunkBytes - this.#length, data.length - offset);
      const buffer = this.#reserve(this.#length + count);
      if (this.#markTimes.at(-1) !== atUnixMs) {
        this.#markOffsets.push(this.#length);
        this.#markTimes.push(atUnixMs);
      }
      buffer.set(data.subarray(offset, offset + count), this.#length);
      // search the new bytes only: rescanning the whole buffer per write would be quadratic
      const newline = buffer.subarray(this.#length, this.#length + count).lastIndexOf(NEWLINE);
      if (newline >= 0) this.#lineEnd = this.#length + newline + 1;
      this.#length += count;
      offset += count;
      if (this.#length === this.#chunkBytes) this.#cut(this.#lineEnd > 0 ? this.#lineEnd : this.#length, out);
    }
  }

  /** Cuts what is complete: whole lines, or everything when `final`. */
  flush(final: boolean, out: CapturedChunk[]): void {
    const end = final ? this.#length : this.#lineEnd;
    if (end > 0) this.#cut(end, out);
  }

  #reserve(size: number): Buffer {
    const current = this.#buffer;
    if (current !== undefined && current.length >= size) return current;
    let capacity = Math.max(current?.length ?? 0, Math.min(MIN_BUFFER_BYTES, this.#chunkBytes));
    while (capacity < size) capacity = Math.min(capacity * 2, this.#chunkBytes);
    // allocUnsafeSlow: a buffer of its own, never a slice of Node's shared pool
    const grown = Buffer.allocUnsafeSlow(capacity);
    if (current !== undefined) current.copy(grown, 0, 0, this.#length);
    this.#buffer = grown;
    return grown;
  }

  #cut(end: number, out: CapturedChunk[]): void {
    const buffer = this.#buffer!;
    const remaining = this.#length - end;
    let data: Uint8Array;
    if (remaining === 0 && end === buffer.length) {
      // the buffer is exactly the chunk: hand it over instead of copying it
      data = new Uint8Array(buffer.buffer, buffer.byteOffset, end);
      this.#buffer = undefined;
    } else {
      data = new Uint8Array(buffer.buffer, buffer.byteOffset, end).slice();
      if (remaining > 0) buffer.copyWithin(0, end, this.#length);
      // an empty stream holds no memory
      else this.#buffer = undefined;
    }
    out.push({
      stream: this.#stream,
      seq: this.#seq++,
      atUnixMs: this.#markTimes[0]!,
      data,
      droppedBytes: 0,
    });
    this.#length = remaining;
    // cuts happen at the last newline or where there is none, so none is left
    this.#lineEnd = 0;
    this.#dropMarksBefore(end);
  }

  #dropMarksBefore(end: number): void {
    if (this.#length === 0) {
      this.#markOffsets = [];
      this.#markTimes = [];
      return;
    }
    // keep the mark that covers byte `end`, now byte 0, and those after it
    let first = 0;
    while (first + 1 < this.#markOffsets.length && this.#markOffsets[first + 1]! <= end) first++;
    this.#markOffsets = this.#markOffsets.slice(first).map((offset) => Math.max(0, offset - end));
    this.#markTimes = this.#markTimes.slice(first);
  }
}

export class LogCapture {
  readonly #maxBytes: number;
  readonly #now: () => number;
  readonly #pending: Record<OutputStream, PendingBytes>;
  #ready: CapturedChunk[] = [];
  #systemSeq = 0;
  #closingLine: string | undefined;
  #capturedBytes = 0;
  #droppedBytes = 0;
  #closed = false;

  constructor(options: LogCaptureOptions) {
    const { maxBytes, chunkBytes } = options;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new RangeError(`maxBytes must be a non-negative integer, got ${maxBytes}`);
    }
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0) {
      throw new RangeError(`chunkBytes must be a positive integer, got ${chunkBytes}`);
    }
    this.#maxBytes = maxBytes;
    this.#now = options.now ?? Date.now;
    this.#pending = {
      stdout: new PendingBytes("stdout", chunkBytes),
      stderr: new PendingBytes("stderr", chunkBytes),
    };
  }

  /** Bytes of stdout and stderr kept so far (system lines are not counted). */
  get capturedBytes(): number {
    return this.#capturedBytes;
  }

  /** Bytes of stdout and stderr written past the cap and not kept. */
  get droppedBytes(): number {
    return this.#droppedBytes;
  }

  /** Records bytes a task wrote. Copies what fits under the cap; `data` may be reused afterwards. */
  append(stream: OutputStream, data: Uint8Array): void {
    if (this.#closed || data.length === 0) return;
    const kept = Math.min(data.length, this.#maxBytes - this.#capturedBytes);
    this.#droppedBytes += data.length - kept;
    if (kept === 0) return;
    this.#capturedBytes += kept;
    this.#pending[stream].write(data.subarray(0, kept), this.#now(), this.#ready);
  }

  /** Records a line written by the framework itself; a newline is added if missing. */
  system(text: string): void {
    if (this.#closed) return;
    this.#pushSystem(text, 0);
  }

  /** Counts bytes dropped before they reached this capture (e.g. by the spawner's output limit). */
  addDropped(bytes: number): void {
    this.#droppedBytes += bytes;
  }

  /** A system line to emit at the final take, after everything the task wrote (e.g. how it ended). */
  closeWith(text: string): void {
    this.#closingLine = text;
  }

  /**
   * Returns the chunks ready since the last call: each stream's complete lines
   * (a partial last line waits for more) and any chunk cut because it reached
   * chunkBytes. With `final`, everything left goes out, followed by the
   * truncation marker if bytes were dropped; the capture then ignores further
   * input and returns nothing more.
   */
  takeChunks(final = false): CapturedChunk[] {
    if (this.#closed) return [];
    this.#pending.stdout.flush(final, this.#ready);
    this.#pending.stderr.flush(final, this.#ready);
    if (final) {
      this.#closed = true;
      if (this.#closingLine !== undefined) this.#pushSystem(this.#closingLine, 0);
      if (this.#droppedBytes > 0) {
        this.#pushSystem(
          `[taskframe] output truncated: ${this.#droppedBytes} bytes dropped after the ${this.#maxBytes}-byte cap`,
          this.#droppedBytes,
        );
      }
    }
    const chunks = this.#ready;
    this.#ready = [];
    return chunks;
  }

  #pushSystem(text: string, droppedBytes: number): void {
    const line = text.endsWith("\n") ? text : `${text}\n`;
    const data = new Uint8Array(Buffer.from(line, "utf8"));
    this.#ready.push({ stream: "system", seq: this.#systemSeq++, atUnixMs: this.#now(), data, droppedBytes });
  }
}
