import { describe, expect, it } from "vitest";
import { type CapturedChunk, LogCapture } from "./log-capture.js";

const text = (chunk: CapturedChunk) => Buffer.from(chunk.data).toString("utf8");
const joined = (chunks: CapturedChunk[], stream: CapturedChunk["stream"]) =>
  Buffer.concat(chunks.filter((chunk) => chunk.stream === stream).map((chunk) => chunk.data));

describe("LogCapture", () => {
  it("cuts at the last newline and keeps a partial line for later", () => {
    const capture = new LogCapture({ maxBytes: 1024, chunkBytes: 64 });
    capture.append("stdout", Buffer.from("one\ntwo\nthr"));
    expect(capture.takeChunks().map(text)).toEqual(["one\ntwo\n"]);
    expect(capture.takeChunks()).toEqual([]);
    capture.append("stdout", Buffer.from("ee\nfo"));
    expect(capture.takeChunks().map(text)).toEqual(["three\n"]);
    const last = capture.takeChunks(true);
    expect(last.map(text)).toEqual(["fo"]);
    expect(last.map((chunk) => chunk.seq)).toEqual([2]);
  });

  it("numbers each stream on its own, the system stream included", () => {
    const capture = new LogCapture({ maxBytes: 1024, chunkBytes: 64 });
    capture.append("stdout", Buffer.from("a\n"));
    capture.append("stderr", Buffer.from("b\n"));
    capture.system("starting");
    const first = capture.takeChunks();
    capture.append("stderr", Buffer.from("c\n"));
    capture.append("stdout", Buffer.from("d\n"));
    capture.system("done\n");
    const second = capture.takeChunks(true);
    const seqs = (stream: CapturedChunk["stream"]) =>
      [...first, ...second]
        .filter((chunk) => chunk.stream === stream)
        .map((chunk) => [chunk.seq, text(chunk)]);
    expect(seqs("stdout")).toEqual([
      [0, "a\n"],
      [1, "d\n"],
    ]);
    expect(seqs("stderr")).toEqual([
      [0, "b\n"],
      [1, "c\n"],
    ]);
    expect(seqs("system")).toEqual([
      [0, "starting\n"],
      [1, "done\n"],
    ]);
    expect(capture.capturedBytes).toBe(8);
  });

  it("cuts a line longer than chunkBytes into chunkBytes pieces as it arrives", () => {
    const capture = new LogCapture({ maxBytes: 1 << 30, chunkBytes: 8 });
    capture.append("stdout", Buffer.from("x".repeat(20)));
    expect(capture.takeChunks().map(text)).toEqual(["xxxxxxxx", "xxxxxxxx"]);
    expect(capture.takeChunks(true).map(text)).toEqual(["xxxx"]);
  });

  it("cuts a full buffer at its last newline", () => {
    const capture = new LogCapture({ maxBytes: 1024, chunkBytes: 8 });
    capture.append("stdout", Buffer.from("abc\ndefghij"));
    expect(capture.takeChunks().map(text)).toEqual(["abc\n"]);
    capture.append("stdout", Buffer.from("k\n"));
    expect(capture.takeChunks().map(text)).toEqual(["defghijk", "\n"]);
  });

  it("streams a long line without newlines in bounded pieces", () => {
    const chunkBytes = 64 * 1024;
    const capture = new LogCapture({ maxBytes: Number.MAX_SAFE_INTEGER, chunkBytes });
    const piece = Buffer.alloc(10_000, 0x61);
    let total = 0;
    let taken = 0;
    for (let i = 0; i < 2000; i++) {
      capture.append("stdout", piece);
      total += piece.length;
      if (i % 100 === 99) {
        for (const chunk of capture.takeChunks()) {
          expect(chunk.data.length).toBe(chunkBytes);
          taken += chunk.data.length;
        }
        // nothing accumulates beyond one chunk per stream
        expect(total - taken).toBeLessThan(chunkBytes);
      }
    }
    for (const chunk of capture.takeChunks(true)) taken += chunk.data.length;
    expect(taken).toBe(total);
  });

  it("keeps invalid UTF-8 byte for byte", () => {
    const capture = new LogCapture({ maxBytes: 1024, chunkBytes: 4 });
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x41, 0x0a, 0xc3, 0x28, 0xe2, 0x82, 0x0a]);
    capture.append("stderr", bytes.subarray(0, 3));
    capture.append("stderr", bytes.subarray(3));
    const chunks = [...capture.takeChunks(), ...capture.takeChunks(true)];
    expect(joined(chunks, "stderr")).toEqual(bytes);
    expect(chunks.every((chunk) => chunk.data.length <= 4)).toBe(true);
  });

  it("copies the input so the caller may reuse its buffer", () => {
    const capture = new LogCapture({ maxBytes: 1024, chunkBytes: 64 });
    const buffer = Buffer.from("abc\n");
    capture.append("stdout", buffer);
    buffer.fill(0x7a);
    expect(capture.takeChunks().map(text)).toEqual(["abc\n"]);
  });

  it("stamps each chunk with the arrival time of its first byte", () => {
    let now = 1000;
    const capture = new LogCapture({ maxBytes: 1024, chunkBytes: 64, now: () => now });
    capture.append("stdout", Buffer.from("ab"));
    now = 2000;
    capture.append("stdout", Buffer.from("c\nd"));
    now = 3000;
    capture.append("stdout", Buffer.from("e\nf"));
    now = 4000;
    capture.append("stdout", Buffer.from("g"));
    const first = capture.takeChunks();
    expect(first.map((chunk) => [text(chunk), chunk.atUnixMs])).toEqual([["abc\nde\n", 1000]]);
    capture.system("note");
    const last = capture.takeChunks(true);
    expect(last.map((chunk) => [chunk.stream, text(chunk), chunk.atUnixMs])).toEqual([
      ["system", "note\n", 4000],
      ["stdout", "fg", 3000],
    ]);
  });

  it("stamps pieces of a cut line with the arrival of their own first byte", () => {
    let now = 1000;
    const capture = new LogCapture({ maxBytes: 1024, chunkBytes: 4, now: () => now });
    capture.append("stdout", Buffer.from("abcdef"));
    now = 2000;
    capture.append("stdout", Buffer.from("ghij"));
    expect(capture.takeChunks(true).map((chunk) => [text(chunk), chunk.atUnixMs])).toEqual([
      ["abcd", 1000],
      ["efgh", 1000],
      ["ij", 2000],
    ]);
  });

  it("drops bytes past the cap across streams and reports them at the end", () => {
    const capture = new LogCapture({ maxBytes: 10, chunkBytes: 64, now: () => 5 });
    capture.append("stdout", Buffer.from("12345\n"));
    capture.append("stderr", Buffer.from("abcdef\n"));
    capture.append("stdout", Buffer.from("more\n"));
    expect(capture.capturedBytes).toBe(10);
    expect(capture.droppedBytes).toBe(8);
    const chunks = [...capture.takeChunks(), ...capture.takeChunks(true)];
    expect(joined(chunks, "stdout").toString()).toBe("12345\n");
    expect(joined(chunks, "stderr").toString()).toBe("abcd");
    const marker = chunks.filter((chunk) => chunk.stream === "system");
    expect(marker).toHaveLength(1);
    expect(text(marker[0]!)).toBe("[taskframe] output truncated: 8 bytes dropped after the 10-byte cap\n");
    expect(marker[0]!.droppedBytes).toBe(8);
    expect(chunks.filter((chunk) => chunk !== marker[0]).every((chunk) => chunk.droppedBytes === 0)).toBe(
      true,
    );
  });

  it("emits no marker when nothing was dropped, and nothing after the final take", () => {
    const capture = new LogCapture({ maxBytes: 4, chunkBytes: 64 });
    capture.append("stdout", Buffer.from("abcd"));
    expect(capture.takeChunks(true).map((chunk) => chunk.stream)).toEqual(["stdout"]);
    capture.append("stdout", Buffer.from("late\n"));
    capture.system("late");
    expect(capture.takeChunks(true)).toEqual([]);
  });

  it("reproduces any input exactly, cut only where the rules allow", () => {
    let state = 12345;
    const random = (n: number) => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state % n;
    };
    for (let round = 0; round < 50; round++) {
      const chunkBytes = 1 + random(16);
      const maxBytes = random(400);
      const capture = new LogCapture({ maxBytes, chunkBytes });
      const written: Record<"stdout" | "stderr", number[]> = { stdout: [], stderr: [] };
      const chunks: CapturedChunk[] = [];
      for (let step = 0; step < 60; step++) {
        const stream = random(2) === 0 ? "stdout" : "stderr";
        const bytes = Array.from({ length: random(20) }, () => (random(5) === 0 ? 0x0a : random(256)));
        written[stream].push(...bytes);
        capture.append(stream, Buffer.from(bytes));
        if (random(4) === 0) {
          for (const chunk of capture.takeChunks()) {
            expect(chunk.data.length).toBeLessThanOrEqual(chunkBytes);
            // a chunk taken early ends a line or is a full piece of a long one
            expect(chunk.data.at(-1) === 0x0a || chunk.data.length === chunkBytes).toBe(true);
            chunks.push(chunk);
          }
        }
      }
      chunks.push(...capture.takeChunks(true));
      const total = written.stdout.length + written.stderr.length;
      expect(capture.capturedBytes + capture.droppedBytes).toBe(total);
      expect(capture.capturedBytes).toBe(Math.min(total, maxBytes));
      let kept = 0;
      for (const stream of ["stdout", "stderr"] as const) {
        const data = joined(chunks, stream);
        expect(Buffer.from(written[stream]).subarray(0, data.length)).toEqual(data);
        kept += data.length;
        const seqs = chunks.filter((chunk) => chunk.stream === stream).map((chunk) => chunk.seq);
        expect(seqs).toEqual(seqs.map((_, index) => index));
      }
      expect(kept).toBe(capture.capturedBytes);
      expect(chunks.filter((chunk) => chunk.stream === "system")).toHaveLength(
        capture.droppedBytes > 0 ? 1 : 0,
      );
    }
  });

  it("rejects invalid sizes", () => {
    expect(() => new LogCapture({ maxBytes: -1, chunkBytes: 64 })).toThrow(RangeError);
    expect(() => new LogCapture({ maxBytes: 10, chunkBytes: 0 })).toThrow(RangeError);
    expect(() => new LogCapture({ maxBytes: 10, chunkBytes: 1.5 })).toThrow(RangeError);
  });
});
