import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ThroughputRow } from "./scenario.js";

/** Wall-clock seconds for `xargs -P parallel` to run /bin/true `count` times: the machine's plain spawn rate. */
export function xargsSeconds(count: number, parallel: number): number {
  const started = performance.now();
  const result = spawnSync("sh", ["-c", `seq ${count} | xargs -P ${parallel} -n 1 /bin/true`], {
    stdio: "ignore",
  });
  if (result.status !== 0) throw new Error(`xargs failed (${result.status})`);
  return (performance.now() - started) / 1000;
}

/** Wall-clock seconds for `make -j parallel` over `count` independent targets that each run /bin/true. */
export function makeSeconds(count: number, parallel: number): number {
  const dir = mkdtempSync(join(tmpdir(), "taskframe-bench-make-"));
  try {
    const targets = Array.from({ length: count }, (_, i) => `t${i}`);
    const rules = targets.map((t) => `${t}:\n\t@/bin/true`).join("\n");
    writeFileSync(
      join(dir, "Makefile"),
      `.PHONY: all ${targets.join(" ")}\nall: ${targets.join(" ")}\n${rules}\n`,
    );
    const started = performance.now();
    const result = spawnSync("make", ["-s", "-j", String(parallel), "-C", dir], { stdio: "ignore" });
    if (result.status !== 0) throw new Error(`make failed (${result.status})`);
    return (performance.now() - started) / 1000;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** xargs -P and make -j running /bin/true `tasks` times: the plain spawn rate of this machine's tools. */
export function shellPeerRows(
  tasks: number,
  parallel: number,
  progress: (text: string) => void,
): ThroughputRow[] {
  progress(`  xargs -P ${parallel} ...`);
  const xargs = xargsSeconds(tasks, parallel);
  progress(`  make -j ${parallel} ...`);
  const make = makeSeconds(tasks, parallel);
  return [
    { runner: `xargs -P ${parallel} /bin/true`, tasks, seconds: xargs, note: "no record, no logs" },
    { runner: `make -j ${parallel}`, tasks, seconds: make, note: "no record, no logs" },
  ];
}
