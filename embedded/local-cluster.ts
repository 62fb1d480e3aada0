import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { packagePath } from "../core/package-root.js";

/** The `task` command of this installation. */
const TASK_BIN = packagePath("bin", "task.js");

export interface LocalClusterOptions {
  dbUrl: string;
  natsUrl: string;
  namespace: string;
  /** Where sidecars keep their process ledgers. */
  dir: string;
  hubs?: number;
  sidecars?: number;
  slots?: number;
  ackWait?: string;
  killGrace?: string;
  logMaxBytes?: number;
  reconcileEvery?: string;
  reconcileAfter?: string;
  logLevel?: string;
  /** Every sidecar's jail profile (`--jail`). @default the sidecar's own default, auto */
  jail?: "auto" | "none" | "standard" | "strict";
  /** Extra flags for every sidecar. */
  sidecarFlags?: string[];
  /** Extra flags for every hub (e.g. `--config FILE`). */
  hubFlags?: string[];
  /** Extra environment of the hub processes started at first (failpoints). */
  hubEnv?: Record<string, string>;
  /** Extra environment of every sidecar process. */
  sidecarEnv?: Record<string, string>;
  /** Options for node itself in every process (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
}

/** A `task hub` or `task sidecar` process. */
export interface LocalProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Everything it wrote to stderr so far. */
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
}

/** Where and how one hub runs: `wrap` and the URLs place it on a host of its own (a network namespace). */
export interface HubPlacement {
  /** host:port to listen on (to restart a hub where it was). @default 127.0.0.1:0 */
  listen?: string;
  /** For its process only (failpoints). */
  env?: Record<string, string>;
  wrap?: string[];
  dbUrl?: string;
  natsUrl?: string;
}

export interface LocalCluster {
  readonly hubs: LocalProcess[];
  readonly hubUrls: string[];
  readonly sidecars: LocalProcess[];
  /** Where SDK workers connect to a sidecar (its Runner socket). */
  runnerSocket(sidecar?: number): string;
  /** Another hub, on this machine unless `wrap` places it elsewhere. */
  startHub(options?: HubPlacement): Promise<LocalProcess>;
  /**
   * Another sidecar. `wrap` prefixes its command (e.g. `ip netns exec NS`, to
   * run it on a host of its own), `natsUrl` is how it reaches NATS from there.
   */
  startSidecar(name?: string, options?: { wrap?: string[]; natsUrl?: string }): Promise<LocalProcess>;
  /** SIGTERM to every process (SIGKILL after 10 s), sidecars first. */
  stop(): Promise<void>;
  /** Deletes the namespace's JetStream streams. */
  deleteStreams(): Promise<void>;
}

/**
 * Hubs and sidecars as separate local processes, the way an operator runs
 * them: used by the tests of the distributed mode and by the benchmarks.
 */
export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  const nodeArgs = options.nodeArgs ?? [];
  const common = [
    "--nats",
    options.natsUrl,
    "--namespace",
    options.namespace,
    "--ack-wait",
    options.ackWait ?? "30s",
    "--log-level",
    options.logLevel ?? "warn",
  ];
  const hubs: LocalProcess[] = [];
  const hubUrls: string[] = [];
  const sidecars: LocalProcess[] = [];

  const startHub = async (hubOptions: HubPlacement = {}) => {
    const hub = launch(
      `hub-${hubs.length}`,
      nodeArgs,
      [
        "hub",
        "--db",
        hubOptions.dbUrl ?? options.dbUrl,
        "--listen",
        hubOptions.listen ?? "127.0.0.1:0",
        "--reconcile-every",
        options.reconcileEvery ?? "10s",
        "--reconcile-after",
        options.reconcileAfter ?? "60s",
        "--shutdown-timeout",
        "1s",
        ...(options.hubFlags ?? []),
        ...common,
        // after `common`: the last --nats wins
        ...(hubOptions.natsUrl ? ["--nats", hubOptions.natsUrl] : []),
      ],
      hubOptions.env ?? options.hubEnv,
      hubOptions.wrap,
    );
    const line = await waitForLine(hub, /hub listening on (http:\/\/\S+)/);
    hubs.push(hub);
    hubUrls.push(line[1]!);
    return hub;
  };
  const startSidecar = async (
    name = `sidecar-${sidecars.length}`,
    placement: { wrap?: string[]; natsUrl?: string } = {},
  ) => {
    const natsArgs = placement.natsUrl ? ["--nats", placement.natsUrl] : [];
    const sidecar = launch(
      name,
      nodeArgs,
      [
        "sidecar",
        "--hub",
        hubUrls[0]!,
        "--host",
        name,
        "--slots",
        String(options.slots ?? 16),
        "--kill-grace",
        options.killGrace ?? "5s",
        "--log-max-bytes",
        String(options.logMaxBytes ?? 16 * 2 ** 20),
        "--ledger-dir",
        join(options.dir, `ledger-${name}`),
        "--drain-timeout",
        "2s",
        "--socket",
        socketOf(name),
        ...(options.jail ? ["--jail", options.jail] : []),
        ...(options.sidecarFlags ?? []),
        ...common,
        // after `common`: the last --nats wins
        ...natsArgs,
      ],
      options.sidecarEnv,
      placement.wrap,
    );
    await waitForLine(sidecar, /leasing pools/);
    sidecars.push(sidecar);
    return sidecar;
  };
  const stop = () => stopAll([...sidecars, ...hubs]);
  function socketOf(name: string): string {
    return join(options.dir, `runner-${name}.sock`);
  }

  try {
    for (let i = 0; i < (options.hubs ?? 1); i++) await startHub();
    for (let i = 0; i < (options.sidecars ?? 1); i++) await startSidecar();
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    hubs,
    hubUrls,
    sidecars,
    runnerSocket: (sidecar = 0) => socketOf(sidecars[sidecar]!.name),
    startHub,
    startSidecar,
    stop,
    deleteStreams: () => deleteNamespaceStreams(options.natsUrl, options.namespace),
  };
}

function launch(
  name: string,
  nodeArgs: readonly string[],
  args: string[],
  env?: Record<string, string>,
  wrap: readonly string[] = [],
): LocalProcess {
  const argv = [process.execPath, ...nodeArgs, TASK_BIN, ...args];
  const [command, ...rest] = [...wrap, ...argv];
  const child = spawn(command!, rest, {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...env },
  });
  let stderr = "";
  child.stderr?.on("data", (data: Buffer) => {
    stderr += data.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  return { name, child, stderr: () => stderr, exited };
}

/** Waits for the process to print a line matching `pattern` on stderr. */
async function waitForLine(
  process: LocalProcess,
  pattern: RegExp,
  timeoutMs = 30_000,
): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = process.stderr().match(pattern);
    if (match) return match;
    if (process.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`${process.name} did not start:\n${process.stderr()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stopAll(processes: LocalProcess[]): Promise<void> {
  await Promise.all(
    processes.map(async (p) => {
      if (p.child.exitCode !== null || p.child.signalCode !== null) return;
      p.child.kill("SIGTERM");
      const timer = setTimeout(() => p.child.kill("SIGKILL"), 10_000);
      await p.exited;
      clearTimeout(timer);
    }),
  );
}

async function deleteNamespaceStreams(natsUrl: string, namespace: string): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    const prefix = `${namespace.toUpperCase()}_`;
    for await (const stream of jsm.streams.list()) {
      if (stream.config.name.startsWith(prefix)) await jsm.streams.delete(stream.config.name);
    }
  } finally {
    await nc.close();
  }
}
