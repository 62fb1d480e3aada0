import type { Writable } from "node:stream";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { sizeDelimitedEncode } from "@bufbuild/protobuf/wire";

/**
 * Writes size-delimited messages to a stream, coalescing everything queued in
 * one tick into a single write: one syscall for many small frames.
 */
export class FrameWriter<Desc extends DescMessage> {
  #queued: Uint8Array[] = [];
  #scheduled = false;

  constructor(
    private readonly schema: Desc,
    private readonly stream: Writable,
  ) {}

  write(message: MessageShape<Desc>): void {
    this.#queued.push(sizeDelimitedEncode(this.schema, message));
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.#scheduled = false;
    if (this.#queued.length === 0 || this.stream.destroyed) return;
    const frames = this.#queued;
    this.#queued = [];
    this.stream.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
  }
}
