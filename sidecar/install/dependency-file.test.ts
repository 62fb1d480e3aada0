import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DependencyFileError,
  dependencyLists,
  parseDependencyFile,
  readDependencyFile,
} from "./dependency-file.js";
import { InstallError } from "./install-error.js";

const SHA = "a".repeat(64);

function problemOf(json: unknown): string {
  try {
    parseDependencyFile(typeof json === "string" ? json : JSON.stringify(json), "deps.json");
  } catch (error) {
    expect(error).toBeInstanceOf(DependencyFileError);
    expect(error).toBeInstanceOf(InstallError);
    return (error as Error).message;
  }
  throw new Error("expected the file to be rejected");
}

describe("dependency files", () => {
  it("maps each ecosystem to what its installer takes", () => {
    const file = parseDependencyFile(
      JSON.stringify({
        dependencies: [
          { ecosystem: "pypi", name: "requests", version: "2.31.0" },
          { ecosystem: "npm", name: "@scope/is-number", version: "7.0.0" },
          { ecosystem: "apt", name: "jq", version: "1.6-2.1" },
          { ecosystem: "apt", name: "curl", version: "" },
          { ecosystem: "apt", name: "zstd" },
          {
            ecosystem: "artifact",
            name: "tool",
            version: "1",
            url: "https://example.org/t.tgz",
            sha256: SHA.toUpperCase(),
          },
        ],
      }),
      "deps.json",
    );
    expect(dependencyLists(file)).toEqual({
      pip: ["requests==2.31.0"],
      npm: ["@scope/is-number@7.0.0"],
      apt: ["jq=1.6-2.1", "curl", "zstd"],
      artifacts: [{ url: "https://example.org/t.tgz", sha256: SHA }],
    });
  });

  it("says which file, where in it and what was expected", () => {
    expect(problemOf("{ not json")).toMatch(/^deps\.json: not valid JSON: /);
    expect(problemOf("secret-token-123")).toBe("deps.json: not valid JSON: Unexpected token 's'");
    expect(problemOf([])).toBe('deps.json: (top level): expected an object: { "dependencies": [...] }');
    expect(problemOf({})).toBe("deps.json: dependencies: expected an array of dependencies");
    expect(problemOf({ dependencies: [{ ecosystem: "cargo", name: "x", version: "1" }] })).toBe(
      'deps.json: dependencies[0].ecosystem: expected one of "pypi", "npm", "apt", "artifact"',
    );
    expect(
      problemOf({
        dependencies: [
          { ecosystem: "npm", name: "ok", version: "1.0.0" },
          { ecosystem: "artifact", name: "tool", url: "https://example.org/tool" },
        ],
      }),
    ).toBe("deps.json: dependencies[1].sha256: missing; an artifact needs a url and a sha256");
    expect(
      problemOf({ dependencies: [{ ecosystem: "artifact", name: "t", url: "/opt/t", sha256: "abc" }] }),
    ).toBe('deps.json: dependencies[0].sha256: expected 64 hex digits, got "abc"');
    expect(
      problemOf({ dependencies: [{ ecosystem: "artifact", name: "t", url: "ftp://h/t", sha256: SHA }] }),
    ).toMatch(/^deps\.json: dependencies\[0\]\.url: unsupported scheme "ftp:"/);
    expect(problemOf({ dependencies: [{ ecosystem: "pypi", name: "requests" }] })).toBe(
      'deps.json: dependencies[0].version: expected a pinned version, e.g. "2.31.0"',
    );
    expect(problemOf({ dependencies: [{ ecosystem: "npm", name: "--registry=x", version: "1" }] })).toBe(
      'deps.json: dependencies[0].name: not a valid npm package name: "--registry=x"',
    );
    expect(
      problemOf({ dependencies: [{ ecosystem: "pypi", name: "a", version: "1", sha265: SHA }] }),
    ).toMatch(/^deps\.json: dependencies\[0\]: Unrecognized key: "sha265"/);
  });

  it("reports every problem, one per line", () => {
    const message = problemOf({
      dependencies: [
        { ecosystem: "pypi", name: "a", version: "" },
        { ecosystem: "apt", name: "B" },
      ],
    });
    expect(message.split("\n")).toEqual([
      'deps.json: dependencies[0].version: expected a pinned version, e.g. "2.31.0"',
      'deps.json: dependencies[1].name: not a valid Debian package name: "B"',
    ]);
  });

  describe("reading", () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "taskframe-depfile-"));
      await writeFile(
        join(dir, "deps.json"),
        JSON.stringify({ dependencies: [{ ecosystem: "npm", name: "is-number", version: "7.0.0" }] }),
      );
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("resolves a relative path against the task's working directory", async () => {
      const file = await readDependencyFile("deps.json", dir);
      expect(dependencyLists(file).npm).toEqual(["is-number@7.0.0"]);
    });

    it("names the resolved path of a file it cannot read", async () => {
      await expect(readDependencyFile("missing.json", dir)).rejects.toThrow(
        `${join(dir, "missing.json")}: cannot read the dependency file (install from): ENOENT`,
      );
    });
  });
});
