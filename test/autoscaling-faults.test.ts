import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROVIDER_HOST_ID_ENV } from "../core/host-channel.js";
import { RunState, TaskState } from "../core/states.js";
import { startFakeDatacenter } from "../hub/provisioning/fake-datacenter.js";
import { TASK_BIN } from "./helpers/cli.js";
import { type Cluster, startCluster, TEST_NATS_URL } from "./helpers/cluster.js";
import { runSpec, shellTask, waitForRun } from "./helpers/engine.js";
import { until } from "./helpers/until.js";

describe("autoscaling through a datacenter API that fails", () => {
  it("never makes a host twice, retries, deletes hosts that never register, replaces a lost one, and loses no work", async () => {
    let cluster: Cluster | undefined;
    const sidecars = new Map<string, ChildProcess>();
    const killed = new Set<string>();
    // every host that comes up runs a real sidecar, told its provider id
    const datacenter = await startFakeDatacenter({
      bootMs: 500,
      launch: async (host) => {
        const child = spawn(
          process.execPath,
          [
            TASK_BIN,
            "sidecar",
            ...["--nats", TEST_NATS_URL, "--namespace", cluster!.namespace, "--hub", cluster!.hubUrls[0]!],
            ...["--host", host.id, "--pool", "default", "--slots", "8", "--jail", "none"],
            ...["--ack-wait", "3s", "--kill-grace", "300ms", "--drain-timeout", "2s", "--log-level", "warn"],
            ...["--ledger-dir", join(cluster!.dir, `ledger-${host.id}`)],
          ],
          { env: { ...process.env, [PROVIDER_HOST_ID_ENV]: host.id }, stdio: "ignore" },
        );
        sidecars.set(host.id, child);
        const exited = once(child, "exit");
        return {
          async stop() {
            if (child.exitCode === null && child.signalCode === null)
              child.kill(killed.has(host.id) ? "SIGKILL" : "SIGTERM");
            await exited;
          },
        };
      },
    });
    Object.assign(datacenter.faults, {
      createFailures: 1,
      createHangAfterCreateMs: 1_500,
      neverLaunch: true,
    });
    const config = join(await mkdtemp(join(tmpdir(), "taskframe-faults-")), "hub.yaml");
    await writeFile(
      config,
      [
        "autoscale:",
        `  provider: { kind: http, url: "${datacenter.url}", timeout: 400ms }`,
        "  interval: 300ms",
        "  heartbeat-timeout: 5s",
        "  register-deadline: 3s",
        "  pools:",
        "    default: { min: 0, max: 2, slots-per-host: 8, scale-up-cooldown: 1s, scale-down-cooldown: 30s }",
        "",
      ].join("\n"),
    );
    cluster = await startCluster({ sidecars: 0, ackWait: "3s", hubFlags: ["--config", config] });
    try {
      const client = cluster.client();
      const tasks = Array.from({ length: 48 }, (_, i) => shellTask(`work-${i}`, "sleep 2"));
      const { run } = await client.submitRun({ run: runSpec("through-faults", tasks) });
      const history = async () => (await client.getHostHistory({ limit: 1000 })).events;

      // the first two hosts never register: deleted at the deadline, and counted
      // (the fault is read as a host is made: off once the first two exist)
      await until(
        async () => datacenter.created,
        (created) => created >= 2,
        30_000,
      );
      datacenter.faults.neverLaunch = false;
      await until(
        history,
        (events) => events.filter((e) => e.action === "never-registered").length === 2,
        30_000,
      );
      // their replacements register and take the work
      const registered = await until(
        history,
        (events) => events.filter((e) => e.action === "registered").length >= 1,
        30_000,
      );
      // a host vanishes mid-run: its tasks come back after their leases expire
      const victim = registered.find((e) => e.action === "registered")!.providerHostId;
      await until(
        async () =>
          (await client.listHosts({})).hosts.find((h) => h.heartbeat?.providerHostId === victim)?.heartbeat
            ?.running ?? 0,
        (running) => running > 0,
        30_000,
      );
      killed.add(victim);
      await datacenter.kill(victim);

      const finished = await waitForRun(client, run!.id);
      expect(finished.run.state).toBe(RunState.SUCCEEDED);
      const all = [...finished.tasks.values()];
      expect(all.every((t) => t.state === TaskState.SUCCEEDED)).toBe(true);
      // what ran on the lost host ran again elsewhere (redelivered once its leases expired)
      const moved: string[] = [];
      for (const task of all) {
        const { events } = await client.getAudit({ task: { taskId: task.id } });
        if (events.some((e) => e.to === TaskState.RUNNING && e.host === victim) && task.host !== victim)
          moved.push(task.name);
      }
      expect(moved.length).toBeGreaterThan(0);

      const events = await history();
      const count = (action: string) => events.filter((e) => e.action === action).length;
      expect(count("create-failed")).toBeGreaterThanOrEqual(2); // the 500, and the create that answered too late
      expect(count("never-registered")).toBe(2);
      expect(count("lost")).toBeGreaterThanOrEqual(1);
      // one host per token: the create that timed out and was retried made one host, not two
      const tokens = new Set(datacenter.hosts().map((h) => h.idempotency_token));
      expect(tokens.size).toBe(datacenter.hosts().length);
      expect(datacenter.created).toBe(count("created"));
      // never above max at the datacenter
      expect(datacenter.hosts().filter((h) => h.state !== "terminating").length).toBeLessThanOrEqual(2);
    } finally {
      await cluster[Symbol.asyncDispose]();
      await datacenter.close();
      for (const child of sidecars.values()) if (child.exitCode === null) child.kill("SIGKILL");
    }
  }, 150_000);
});
