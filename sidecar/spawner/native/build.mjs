/*
 * Builds the native spawner helper (taskframe-spawner.c) with this machine's
 * C compiler ($CC, else cc; $CFLAGS added). Run at install (package.json "install"): when
 * there is no compiler, or the platform lacks what the helper needs (Linux,
 * glibc >= 2.29), nothing is built, install goes on, and sidecars start
 * tasks through spawner-process.ts instead.
 *
 *   node build.mjs             install: build next to this file; never fails
 *   node build.mjs --out PATH  build PATH; exits 1 with the compiler's output on failure
 */
import { spawnSync } from "node:child_process";
import { renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, "taskframe-spawner.c");
// where the Spawner looks for it (sidecar/spawner/native-helper.ts)
const installed = join(here, "taskframe-spawner");

function build(output) {
  const compiler = process.env.CC || "cc";
  // built aside and renamed: a running sidecar never starts a half-written binary
  const partial = `${output}.${process.pid}.tmp`;
  // e.g. CFLAGS="-g -fsanitize=address,undefined" to test it
  const flags = (process.env.CFLAGS ?? "").split(" ").filter(Boolean);
  const result = spawnSync(compiler, ["-O2", "-std=gnu11", "-Wall", ...flags, "-o", partial, source], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (result.error || result.status !== 0) {
    rmSync(partial, { force: true });
    return {
      ok: false,
      detail: result.error ? result.error.message : `${result.stdout}${result.stderr}`.trim(),
    };
  }
  renameSync(partial, output);
  return { ok: true, detail: "" };
}

const outAt = process.argv.indexOf("--out");
if (outAt >= 0) {
  const output = process.argv[outAt + 1];
  if (!output) {
    process.stderr.write("usage: node build.mjs [--out PATH]\n");
    process.exit(2);
  }
  const { ok, detail } = build(output);
  if (!ok) process.stderr.write(`${detail}\n`);
  process.exit(ok ? 0 : 1);
} else if (process.platform !== "linux") {
  process.stderr.write(
    "taskframe: the native spawner helper is Linux-only; tasks start through Node's spawn\n",
  );
} else {
  const { ok, detail } = build(installed);
  if (!ok) {
    process.stderr.write(
      `taskframe: the native spawner helper was not built (${detail.split("\n")[0]}); tasks start through Node's spawn\n`,
    );
  }
}
