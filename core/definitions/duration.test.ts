import { describe, expect, it } from "vitest";
import { formatDuration, parseDurationMs } from "./duration.js";

describe("parseDurationMs", () => {
  it.each([
    ["500ms", 500],
    ["1s", 1000],
    ["10m", 600_000],
    ["1h30m", 5_400_000],
    ["2 hours", 7_200_000],
    ["1h 30m", 5_400_000],
    ["1.5s", 1500],
    ["0s", 0],
    [" 3 minutes ", 180_000],
  ])("parses %j", (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  it("takes a number as seconds", () => {
    expect(parseDurationMs(30)).toBe(30_000);
    expect(parseDurationMs(0.25)).toBe(250);
    expect(parseDurationMs(0)).toBe(0);
  });

  it.each([
    ["-5s", /non-negative duration, got "-5s"/],
    ["abc", /expected a duration such as "500ms".*got "abc"/],
    ["", /expected a duration/],
    ["5", /expected a unit after 5/],
    ["1h30", /expected a unit after 30/],
    ["5 bananas", /unknown unit "bananas"/],
    ["1s garbage", /got "1s garbage"/],
    ["10s!", /got "10s!"/],
  ])("rejects %j", (text, message) => {
    expect(() => parseDurationMs(text)).toThrow(message);
  });

  it("rejects negative and non-finite numbers", () => {
    expect(() => parseDurationMs(-1)).toThrow(/non-negative/);
    expect(() => parseDurationMs(Number.NaN)).toThrow(/finite number of seconds, got NaN/);
    expect(() => parseDurationMs(Number.POSITIVE_INFINITY)).toThrow(/finite/);
  });

  it("rejects durations too long to hold in milliseconds", () => {
    expect(() => parseDurationMs("1e300y")).toThrow(/at most/);
  });
});

describe("formatDuration", () => {
  it.each([
    [0, "0ms"],
    [250, "250ms"],
    [999, "999ms"],
    [1000, "1.0s"],
    [1234, "1.2s"],
    [59_940, "59.9s"],
    [59_960, "1m00s"],
    [184_000, "3m04s"],
    [3_600_000, "1h00m00s"],
    [7_509_000, "2h05m09s"],
  ])("formats %d ms as %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
