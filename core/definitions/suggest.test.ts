import { describe, expect, it } from "vitest";
import { closestMatch, editDistance } from "./suggest.js";

describe("editDistance", () => {
  it("counts insertions, deletions, substitutions and adjacent swaps as one edit each", () => {
    expect(editDistance("run", "run")).toBe(0);
    expect(editDistance("rn", "run")).toBe(1);
    expect(editDistance("retires", "retries")).toBe(1);
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("", "abc")).toBe(3);
  });
});

describe("closestMatch", () => {
  const keys = ["run", "args", "needs", "retries", "retry_interval", "timeout"];
  it("suggests a close key", () => {
    expect(closestMatch("retires", keys)).toBe("retries");
    expect(closestMatch("timout", keys)).toBe("timeout");
    expect(closestMatch("Run", keys)).toBe("run");
  });
  it("suggests nothing when nothing is close", () => {
    expect(closestMatch("image", keys)).toBeUndefined();
    expect(closestMatch("a", ["b", "c"])).toBeUndefined();
  });
});
