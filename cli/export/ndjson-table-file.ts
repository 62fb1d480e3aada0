import { once } from "node:events";
import { createWriteStream, type WriteStream } from "node:fs";
import { rm } from "node:fs/promises";

/** One table of an export as newline-delimited JSON, written as the hub streams it. */
export class NdjsonTableFile {
  readonly #path: string;
  readonly #stream: WriteStream;

  constructor(path: string) {
    this.#path = path;
    this.#stream = createWriteStream(path);
  }

  async append(ndjson: Uint8Array): Promise<void> {
    if (ndjson.length > 0 && !this.#stream.write(ndjson)) await once(this.#stream, "drain");
  }

  async close(): Promise<void> {
    this.#stream.end();
    await once(this.#stream, "close");
  }

  async discard(): Promise<void> {
    this.#stream.destroy();
    await rm(this.#path, { force: true });
  }
}
