import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunState } from "../core/states.js";
import { OwnNats } from "./chaos/harness/own-services.js";
import { type Cluster, startCluster } from "./helpers/cluster.js";
import { runSpec, runToEnd, shellTask } from "./helpers/engine.js";

/*
 * The NATS permissions SECURITY.md recommends (docs/nats-permissions.conf),
 * on a real nats-server: a sidecar restricted to them runs its pool's work,
 * and is refused everything else (RELIABILITY.md test 38, the NATS part).
 */

const namespace = `p${randomBytes(4).toString("hex")}`;
const passwords = { hub: randomBytes(8).toString("hex"), sidecar: randomBytes(8).toString("hex") };
let dir: string;
let nats: OwnNats;
let cluster: Cluster;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "taskframe-nats-permissions-"));
  const template = await readFile(new URL("../docs/nats-permissions.conf", import.meta.url), "utf8");
  const config = template
    .replaceAll("{{NAMESPACE}}", namespace)
    .replaceAll("{{PREFIX}}", namespace.toUpperCase())
    .replaceAll("{{POOL_UPPER}}", "DEFAULT")
    .replaceAll("{{HOST}}", "sidecar-0")
    .replaceAll("{{SIDECAR_USER}}", "sidecar-0")
    .replaceAll("{{SIDECAR_PASSWORD}}", passwords.sidecar)
    .replaceAll("{{HUB_PASSWORD}}", passwords.hub);
  await writeFile(join(dir, "nats.conf"), config);
  nats = await OwnNats.start({ configFile: join(dir, "nats.conf") });
  cluster = await startCluster({
    natsUrl: nats.url,
    namespace,
    hubFlags: ["--nats-user", "hub", "--nats-password", passwords.hub],
    sidecarFlags: ["--nats-user", "sidecar-0", "--nats-password", passwords.sidecar],
  });
}, 60_000);

afterAll(async () => {
  await cluster?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
  await rm(dir, { recursive: true, force: true });
});

describe("a sidecar under the recommended NATS permissions", () => {
  it("runs its pool's work", async () => {
    const { run } = await runToEnd(cluster.client(), runSpec("allowed", [shellTask("a", "echo ok")]));
    expect(run.state).toBe(RunState.SUCCEEDED);
    expect(cluster.sidecars[0]!.stderr()).not.toMatch(/permission/i);
  });

  it("may not publish another host's events, delete streams, or read other subjects", async () => {
    const nc = await connect({ servers: nats.url, user: "sidecar-0", pass: passwords.sidecar });
    try {
      await expect(
        nc.request(`$JS.API.STREAM.DELETE.${namespace.toUpperCase()}_EVENTS`, "", { timeout: 2_000 }),
      ).rejects.toThrow(/permission/i);
      await expect(nc.request(`${namespace}.events.sidecar-1`, "x", { timeout: 2_000 })).rejects.toThrow(
        /permission/i,
      );
      const spy = nc.subscribe(`${namespace}.work.>`);
      const refused = (async () => {
        for await (const _ of spy) return "message";
        return "closed";
      })();
      await expect(refused).rejects.toThrow(/permission/i);
    } finally {
      await nc.close().catch(() => {});
    }
  });
});
