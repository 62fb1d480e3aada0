import { execFileSync } from "node:child_process";
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packagePath } from "../core/package-root.js";

/*
 * Generated code is never edited by hand: regenerating from proto/ and from
 * the drizzle schema must reproduce exactly what is committed.
 */

const bin = (name: string) => packagePath("node_modules", ".bin", name);

async function filesUnder(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(relative(dir, path), await readFile(path, "utf8"));
  }
  return files;
}

describe("generated code", () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), "taskframe-generated-"));
  });
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it("core/gen is what buf generates from proto/", async () => {
    const out = join(scratch, "gen");
    const template = JSON.stringify({
      version: "v2",
      plugins: [{ local: bin("protoc-gen-es"), out, opt: ["target=ts", "import_extension=js"] }],
    });
    execFileSync(bin("buf"), ["generate", "--template", template], { cwd: packagePath(), stdio: "pipe" });
    expect(await filesUnder(out)).toEqual(await filesUnder(packagePath("core", "gen")));
  });

  it("hub/drizzle has a migration for every change to the schema", async () => {
    const out = join(scratch, "drizzle");
    await cp(packagePath("hub", "drizzle"), out, { recursive: true });
    const config = join(scratch, "drizzle.config.mjs");
    await writeFile(
      config,
      `export default { dialect: "postgresql", schema: ${JSON.stringify(packagePath("hub", "store", "schema.ts"))}, out: "drizzle" };\n`,
    );
    // drizzle-kit reads `out` relative to the working directory
    const output = execFileSync(bin("drizzle-kit"), ["generate", "--config", config], {
      cwd: scratch,
      encoding: "utf8",
      stdio: "pipe",
    });
    expect(output).toContain("No schema changes");
    expect([...(await filesUnder(out)).keys()].sort()).toEqual(
      [...(await filesUnder(packagePath("hub", "drizzle"))).keys()].sort(),
    );
  });
});
