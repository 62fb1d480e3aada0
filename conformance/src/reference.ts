import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { HubClient } from "../../cli/hub-client.js";
import { HubService } from "../../core/gen/taskframe/v1/hub_pb.js";
import { RunSpecSchema, TaskSpecSchema } from "../../core/gen/taskframe/v1/spec_pb.js";
import { RunState } from "../../core/states.js";
import { EmbeddedEngine } from "../../embedded/engine.js";
import { startLocalCluster } from "../../embedded/local-cluster.js";
import { createScratchDatabase } from "../../hub/store/scratch-database.js";

/** Leases are short, so that the lease-extension case needs the worker's heartbeats. */
const ACK_WAIT_MS = 1_500;

/** The reference hub and sidecar an adapter is tested against. */
export interface Reference extends AsyncDisposable {
  readonly description: string;
  readonly client: HubClient;
  readonly socketPath: string;
  registered(workerName: string): Promise<boolean>;
}

export type ReferenceKind =
  | { kind: "embedded" }
  | { kind: "distributed"; postgresUrl: string; natsUrl: string };

export async function startReference(kind: ReferenceKind): Promise<Reference> {
  return kind.kind === "embedded" ? embedded() : distributed(kind.postgresUrl, kind.natsUrl);
}

async function embedded(): Promise<Reference> {
  const dataDir = mkdtempSync(join(tmpdir(), "taskframe-conformance-"));
  const engine = await EmbeddedEngine.open({ dataDir, ackWaitMs: ACK_WAIT_MS, killGraceMs: 500 });
  return {
    description: "an embedded hub and sidecar",
    client: engine.client(),
    socketPath: engine.runnerSocket ?? "",
    registered: async (name) => engine.sidecar?.workers.some((w) => w.name === name && !w.draining) ?? false,
    async [Symbol.asyncDispose]() {
      await engine.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * `task hub` and `task sidecar` processes over a scratch database on the
 * given Postgres and a scratch namespace on the given NATS. The sidecar is
 * another process, so whether a worker serves is asked the way a user
 * would: a probe task that the worker's `conformance.echo` must answer.
 */
async function distributed(postgresUrl: string, natsUrl: string): Promise<Reference> {
  const suffix = randomBytes(4).toString("hex");
  const database = await createScratchDatabase(postgresUrl, "taskframe_conformance");
  const dir = mkdtempSync(join(tmpdir(), "taskframe-conformance-"));
  const dispose = async () => {
    await database[Symbol.asyncDispose]();
    rmSync(dir, { recursive: true, force: true });
  };
  let cluster: Awaited<ReturnType<typeof startLocalCluster>>;
  try {
    cluster = await startLocalCluster({
      dbUrl: database.url,
      natsUrl,
      namespace: `conf${suffix}`,
      dir,
      hubs: 1,
      sidecars: 1,
      slots: 4,
      ackWait: `${ACK_WAIT_MS}ms`,
      killGrace: "500ms",
      logLevel: "error",
    });
  } catch (error) {
    await dispose();
    throw error;
  }
  const client = createClient(
    HubService,
    createConnectTransport({ baseUrl: cluster.hubUrls[0]!, httpVersion: "1.1" }),
  );
  return {
    description: `a hub and a sidecar (processes) over ${new URL(postgresUrl).host} and ${natsUrl}`,
    client,
    socketPath: cluster.runnerSocket(0),
    registered: (name) => probe(client, name),
    async [Symbol.asyncDispose]() {
      await cluster.stop();
      await cluster.deleteStreams().catch(() => {});
      await dispose();
    },
  };
}

/** Whether a probe task is served within a short while (by whichever worker serves the handler). */
async function probe(client: HubClient, name: string): Promise<boolean> {
  const { run } = await client.submitRun({
    run: create(RunSpecSchema, {
      name: `conformance probe for ${name}`,
      tasks: [
        create(TaskSpecSchema, {
          name: "probe",
          target: { case: "handler", value: { handler: "conformance.echo", input: Buffer.from(name) } },
          timeoutMs: 2_000n,
        }),
      ],
    }),
  });
  const deadline = Date.now() + 3_000;
  while (Date.now() < deadline) {
    const { run: current } = await client.getRun({ runId: run!.id });
    if (current?.state === RunState.SUCCEEDED) return true;
    if (current && current.state !== RunState.RUNNING) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await client.cancelRun({ runId: run!.id, reason: "probe timed out" }).catch(() => {});
  return false;
}
