import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fnv1a32, RecordPartitioner } from "./record-partitioner.js";

describe("RecordPartitioner", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "taskframe-partitioner-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("hashes keys with 32-bit FNV-1a (the value every SDK computes)", () => {
    expect(fnv1a32(Buffer.from(""))).toBe(2166136261);
    expect(fnv1a32(Buffer.from("a"))).toBe(0xe40c292c);
    expect(fnv1a32(Buffer.from("foobar"))).toBe(0xbf9cf968);
  });

  it("sends every record of a key to one file, whatever the chunking, and counts them", async () => {
    const records = ["apple\t1", "pear\t2", "apple\t3", "fig", "", "kiwi\t4\twith tab", "pear\t5"];
    const text = `${records.join("\n")}\n`;
    const partitioner = await RecordPartitioner.open(dir, 3);
    for (let at = 0; at < text.length; at += 4) await partitioner.write(Buffer.from(text.slice(at, at + 4)));
    await partitioner.close();
    expect((await readdir(dir)).sort()).toEqual(["r-0", "r-1", "r-2"]);
    const byFile = await Promise.all([0, 1, 2].map((r) => readFile(join(dir, `r-${r}`), "utf8")));
    for (const key of ["apple", "pear", "fig", "kiwi"]) {
      const holding = byFile.filter((content) => content.split("\n").some((l) => l.split("\t")[0] === key));
      expect(holding, key).toHaveLength(1);
      expect(byFile.indexOf(holding[0]!)).toBe(fnv1a32(Buffer.from(key)) % 3);
    }
    expect(partitioner.records).toBe(6); // the empty line is no record
    expect(byFile.join("").length).toBe(partitioner.bytes);
  });
});
