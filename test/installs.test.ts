import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InstallSpecSchema, TaskSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { TaskState } from "../core/states.js";
import { type HubClient, runSpec, runToEnd, startEngine, type TestEngine } from "./helpers/engine.js";

/*
 * [Install] end to end: a jailed task uses what the sidecar installed for it
 * (read-only, as the task's unprivileged account), and a failed install ends
 * the task CHECK_FAILED with the installer's output in its logs.
 */

let harness: TestEngine;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "taskframe-installs-"));
  await chmod(work, 0o755);
  harness = await startEngine("pglite", {
    jail: { profile: "auto" },
    installCacheDir: join(work, "cache"),
  });
});
afterAll(async () => {
  await harness?.[Symbol.asyncDispose]();
  await rm(work, { recursive: true, force: true });
});

const withInstall = (
  name: string,
  script: string,
  install: Parameters<typeof create<typeof InstallSpecSchema>>[1],
) =>
  create(TaskSpecSchema, {
    name,
    target: { case: "exec", value: { command: "/bin/sh", args: ["-c", script], cwd: work } },
    install: create(InstallSpecSchema, install),
  });

async function logsOf(client: HubClient, taskId: string): Promise<string> {
  let text = "";
  for await (const response of client.getLogs({ task: { taskId } }))
    for (const entry of response.entries) text += Buffer.from(entry.data).toString();
  return text;
}

describe("declared dependencies", () => {
  it("installs an npm package and a sha256-pinned tarball, which a jailed task then uses", async () => {
    const tarDir = join(work, "tool");
    await mkdir(join(tarDir, "bin"), { recursive: true });
    await writeFile(join(tarDir, "bin", "hello-tool"), "#!/bin/sh\necho hello from the tool\n", {
      mode: 0o755,
    });
    const tarball = join(work, "tool.tar.gz");
    execFileSync("tar", ["-czf", tarball, "-C", tarDir, "bin"]);
    const sha256 = createHash("sha256")
      .update(await readFile(tarball))
      .digest("hex");
    const script = `node -e "console.log('is-number', require('is-number')(5))"; hello-tool; id -u`;
    const { tasks } = await runToEnd(
      harness.client,
      runSpec("installs", [
        withInstall("uses", script, { npm: ["is-number@7.0.0"], artifacts: [{ url: tarball, sha256 }] }),
      ]),
    );
    const used = tasks.get("uses")!;
    const logs = await logsOf(harness.client, used.id);
    expect(used.state, logs).toBe(TaskState.SUCCEEDED);
    expect(logs).toContain("is-number true\n");
    expect(logs).toContain("hello from the tool\n");
    if (harness.engine.jail?.profile !== "none") expect(logs).toContain("\n65534\n");
  });

  it("ends the task CHECK_FAILED with the installer's output when an install fails, and runs nothing", async () => {
    const marker = join(work, "ran");
    const { tasks } = await runToEnd(
      harness.client,
      runSpec("failing-install", [
        withInstall("broken", `touch ${marker}`, { npm: ["taskframe-no-such-package-xyz@1.0.0"] }),
        withInstall("bad-sha", `touch ${marker}`, {
          artifacts: [{ url: join(work, "tool.tar.gz"), sha256: "0".repeat(64) }],
        }),
      ]),
    );
    const broken = tasks.get("broken")!;
    expect(broken.state).toBe(TaskState.CHECK_FAILED);
    expect(broken.detail).toMatch(/^install failed: npm: .* failed with exit code 1/);
    expect(await logsOf(harness.client, broken.id)).toMatch(/404 Not Found/);
    const badSha = tasks.get("bad-sha")!;
    expect(badSha.state).toBe(TaskState.CHECK_FAILED);
    expect(await logsOf(harness.client, badSha.id)).toContain(`sha256 mismatch: expected ${"0".repeat(64)}`);
    await expect(readFile(marker)).rejects.toThrow(/ENOENT/);
  });
});
