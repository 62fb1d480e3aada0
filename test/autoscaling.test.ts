import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RunState, TaskState } from "../core/states.js";
import { task } from "./helpers/cli.js";
import { startCluster } from "./helpers/cluster.js";
import { runSpec, shellTask, waitForRun } from "./helpers/engine.js";
import { until } from "./helpers/until.js";

const MAX_HOSTS = 4;
const SLOTS = 32;
const TASKS = 5_000;

describe("autoscaling with the local provider", () => {
  it(`scales a pool from 0 to ${MAX_HOSTS} hosts for ${TASKS} tasks, drains it, and back to 0`, async () => {
    const configDir = await mkdtemp(join(tmpdir(), "taskframe-autoscale-"));
    const config = join(configDir, "hub.yaml");
    await writeFile(
      config,
      [
        "autoscale:",
        "  provider:",
        "    kind: local",
        `    sidecar-args: [--slots, "${SLOTS}", --jail, none, --kill-grace, 300ms, --drain-timeout, 5s]`,
        "  interval: 300ms",
        "  heartbeat-timeout: 6s",
        "  register-deadline: 60s",
        "  pools:",
        `    default: { min: 0, max: ${MAX_HOSTS}, slots-per-host: ${SLOTS}, scale-up-cooldown: 1s, scale-down-cooldown: 4s }`,
        "",
      ].join("\n"),
    );
    await using cluster = await startCluster({ sidecars: 0, hubFlags: ["--config", config] });
    const client = cluster.client();

    const tasks = Array.from({ length: TASKS }, (_, i) => shellTask(`sleep-${i}`, "sleep 0.05"));
    const hub = ["--hub", cluster.hubUrls[0]!];
    const submitted = Date.now();
    const { run } = await client.submitRun({ run: runSpec("backlog", tasks) });
    // task hosts, read over and over while the run goes, shows all the hosts ready at some point
    const readyRows = (table: string) =>
      table.match(/^default\s+local-default-\S+\s+ready\s+\d+\/32\s/gm) ?? [];
    let runOver = false;
    const allReadyTable = (async () => {
      while (!runOver) {
        const table = (await task(["hosts", ...hub], { cwd: tmpdir() })).stdout.toString();
        if (readyRows(table).length === MAX_HOSTS) return table;
      }
      return undefined;
    })();
    // up to the maximum, never above it
    let most = 0;
    const watchHosts = async () => {
      const { provisioned, hosts } = await client.listHosts({});
      const active = provisioned.filter((p) =>
        ["requested", "provisioning", "running", "registered"].includes(p.state),
      );
      most = Math.max(most, active.length);
      return { active, hosts, provisioned };
    };
    await until(
      watchHosts,
      ({ hosts }) =>
        hosts.filter((h) => !h.heartbeat?.stopped && (h.heartbeat?.running ?? 0) > 0).length === MAX_HOSTS,
      60_000,
    );
    const allUpMs = Date.now() - submitted;
    const finished = await waitForRun(client, run!.id);
    const ranMs = Date.now() - submitted;
    runOver = true;
    const table = await allReadyTable;
    expect(table).toMatch(/^POOL\s+HOST\s+STATE\s+LOAD\s+AGE\s+LAST SEEN\s+PROVIDER/);
    expect(finished.run.state).toBe(RunState.SUCCEEDED);
    expect(
      [...finished.tasks.values()].every((t) => t.state === TaskState.SUCCEEDED && t.attempt === 1),
    ).toBe(true);
    // back to min once the backlog is gone and the cooldown has passed: drained, then deleted
    await until(watchHosts, ({ provisioned }) => provisioned.length === 0, 60_000);
    console.log(
      `autoscaling: ${MAX_HOSTS} hosts busy ${allUpMs} ms after the submit; ${TASKS} tasks done in ${ranMs} ms ` +
        `(${Math.round(TASKS / (ranMs / 1000))} tasks/s); back to 0 hosts ${Date.now() - submitted} ms after the submit`,
    );
    expect(most).toBe(MAX_HOSTS);

    const history = (await task(["hosts", "history", ...hub], { cwd: tmpdir() })).stdout.toString();
    for (const action of ["scale-up", "created", "registered", "scale-down", "drain", "drained", "deleted"])
      expect(history).toMatch(new RegExp(`\\sdefault\\s+${action}\\s`));
    expect((await task(["hosts", ...hub], { cwd: tmpdir() })).stdout.toString()).toMatch(/^no hosts running/);
    const { events } = await client.getHostHistory({ limit: 1000 });
    const actions = events.map((e) => e.action);
    expect(actions.filter((a) => a === "created")).toHaveLength(MAX_HOSTS);
    expect(actions.filter((a) => a === "registered")).toHaveLength(MAX_HOSTS);
    expect(actions.filter((a) => a === "deleted")).toHaveLength(MAX_HOSTS);
    // every host was drained before it was deleted, and deleted only once its sidecar had stopped
    for (const deleted of events.filter((e) => e.action === "deleted")) {
      const before = events.filter((e) => e.providerHostId === deleted.providerHostId).map((e) => e.action);
      expect(before).toEqual(["created", "registered", "drain", "drained", "deleted"]);
    }
    const { hosts } = await client.listHosts({});
    for (const { heartbeat } of hosts) expect([heartbeat?.stopped, heartbeat?.running]).toEqual([true, 0]);
    // no flapping: scale-downs at least a cooldown apart
    const downs = events.filter((e) => e.action === "scale-down").map((e) => Number(e.atUnixMs));
    for (let i = 1; i < downs.length; i++) expect(downs[i]! - downs[i - 1]!).toBeGreaterThanOrEqual(4_000);
    expect(events.filter((e) => e.action === "scale-up")).toHaveLength(1);
  }, 180_000);
});
