import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Client, Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { bearer } from "../core/bearer.js";
import { HubService } from "../core/gen/taskframe/v1/hub_pb.js";
import { readClientTls } from "../core/hub-tls.js";
import { DataDirLock } from "../embedded/data-dir-lock.js";
import { CliError, ExitCode } from "./cli-error.js";
import { dataDirOf, type StoreOptions } from "./options.js";

export type HubClient = Client<typeof HubService>;

/**
 * Runs `action` with a client of the hub that holds the runs: the hub at
 * --hub; else the live `task run` using the data directory (over its
 * socket); else the embedded store itself, opened read-mostly for the call.
 */
export async function withHubClient<T>(
  options: StoreOptions,
  action: (client: HubClient) => Promise<T>,
): Promise<T> {
  const interceptors = options.token ? [bearer(options.token)] : [];
  if (options.hub?.startsWith("unix:")) {
    const socketPath = options.hub.slice("unix:".length);
    return callHub(
      createConnectTransport({
        baseUrl: "http://taskframe.local",
        httpVersion: "1.1",
        nodeOptions: { socketPath },
        interceptors,
      }),
      action,
    );
  }
  if (options.hub) {
    const tls = readClientTls({ ca: options.hubTlsCa, cert: options.hubTlsCert, key: options.hubTlsKey });
    return callHub(
      createConnectTransport({ baseUrl: options.hub, httpVersion: "1.1", interceptors, nodeOptions: tls }),
      action,
    );
  }
  const dataDir = dataDirOf(options);
  const owner = DataDirLock.readOwner(dataDir);
  if (owner?.socketPath) {
    const transport = createConnectTransport({
      baseUrl: "http://taskframe.local",
      httpVersion: "1.1",
      nodeOptions: { socketPath: owner.socketPath },
    });
    return callHub(transport, action);
  }
  if (!existsSync(join(dataDir, "pglite"))) {
    throw new CliError(
      `no runs yet: ${dataDir} does not exist (run a pipeline with 'task run FILE' first)`,
      ExitCode.Usage,
    );
  }
  const { EmbeddedEngine } = await import("../embedded/engine.js");
  const engine = await EmbeddedEngine.open({ dataDir, sidecar: false });
  try {
    return await callHub(engine.transport, action);
  } finally {
    await engine.close();
  }
}

async function callHub<T>(transport: Transport, action: (client: HubClient) => Promise<T>): Promise<T> {
  try {
    return await action(createClient(HubService, transport));
  } catch (error) {
    throw toCliError(error);
  }
}

export function toCliError(error: unknown): unknown {
  if (!(error instanceof ConnectError)) return error;
  switch (error.code) {
    case Code.InvalidArgument:
    case Code.NotFound:
    case Code.AlreadyExists:
    case Code.FailedPrecondition:
      return new CliError(error.rawMessage, ExitCode.Usage);
    case Code.Unavailable:
      return new CliError(`the hub is unavailable: ${error.rawMessage}`, ExitCode.Unavailable);
    case Code.Unauthenticated:
      return new CliError(
        `the hub refused the credentials: ${error.rawMessage} (give --token or set TASKFRAME_TOKEN)`,
        ExitCode.Usage,
      );
    case Code.PermissionDenied:
      return new CliError(`not allowed: ${error.rawMessage}`, ExitCode.Usage);
    default:
      return error;
  }
}
