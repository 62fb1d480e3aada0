import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InputRange } from "./descriptor.js";
import { splitByBytes, splitKeys } from "./input-splits.js";
import { readLineRanges } from "./line-ranges.js";

const collect = async (ranges: InputRange[]) => {
  const chunks: Buffer[] = [];
  for await (const chunk of readLineRanges(ranges)) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
};

describe("input splits", () => {
  let dir: string;
  const texts = ["alpha beta\n\ngamma\nδέλτα epsilon\nz\n", "one\ntwo\nthree without newline", "\n\nx\n"];
  const files: { path: string; size: number }[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "taskframe-splits-"));
    for (const [i, text] of texts.entries()) {
      const path = join(dir, `f${i}`);
      await writeFile(path, text);
      files.push({ path, size: Buffer.byteLength(text) });
    }
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("reads every line exactly once whatever byte a file is cut at", async () => {
    const { path, size } = files[0]!;
    const whole = await readFile(path, "utf8");
    for (let cut = 0; cut <= size; cut++) {
      const halves = [
        await collect([{ path, start: 0, end: cut }]),
        await collect([{ path, start: cut, end: size }]),
      ];
      expect(halves.join(""), `cut at ${cut}`).toBe(whole);
    }
  });

  it("ends a last line that has no newline with one", async () => {
    const { path, size } = files[1]!;
    expect(await collect([{ path, start: 0, end: size }])).toBe(`${texts[1]}\n`);
    expect(await collect([{ path, start: 5, end: size }])).toBe("three without newline\n");
  });

  it("cuts files into partitions of about equal size whose lines, in order, are all the lines", async () => {
    const all = texts.map((t) => (t.endsWith("\n") ? t : `${t}\n`)).join("");
    for (let partitions = 1; partitions <= 9; partitions++) {
      const splits = splitByBytes(files, partitions);
      expect(splits).toHaveLength(partitions);
      const read = await Promise.all(splits.map(collect));
      expect(read.join(""), `${partitions} partitions`).toBe(all);
    }
  });

  it("groups keys contiguously, one map per key by default", () => {
    expect(splitKeys(["a", "b", "c"])).toEqual([["a"], ["b"], ["c"]]);
    expect(splitKeys(["a", "b", "c", "d", "e"], 2)).toEqual([
      ["a", "b"],
      ["c", "d", "e"],
    ]);
    expect(splitKeys(["a"], 4)).toEqual([["a"]]);
  });
});
