import { readFile } from "node:fs/promises";
import {
  type Authenticator,
  connect,
  credsAuthenticator,
  type NatsConnection,
  type NodeConnectionOptions,
  nkeyAuthenticator,
} from "@nats-io/transport-node";
import { errorMessage } from "../errors.js";
import { redactUrl } from "../redact.js";

export interface NatsConnectOptions {
  /** `host:port` or `nats://host:port` (`tls://` for TLS), one or several of a cluster. */
  servers: string | readonly string[];
  /** Shown in the server's connection list (e.g. `taskframe-hub@host`). */
  name?: string;
  user?: string;
  pass?: string;
  token?: string;
  /** A `.creds` file (user JWT and nkey seed). */
  credsFile?: string;
  /** A file holding an nkey seed (`SU...`). */
  nkeyFile?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** How long the first connection may take. @default 10_000 */
  timeoutMs?: number;
}

/**
 * Connects to NATS, then reconnects forever: after a connection loss the
 * client resubscribes and buffers what is published meanwhile. The caller
 * owns the connection (close or drain it on shutdown).
 */
export async function connectNats(options: NatsConnectOptions): Promise<NatsConnection> {
  const servers = typeof options.servers === "string" ? [options.servers] : [...options.servers];
  if (servers.length === 0) throw new Error("no NATS server given");
  const authenticator = await authenticators(options);
  const connectOptions: NodeConnectionOptions = {
    servers,
    name: options.name,
    user: options.user,
    pass: options.pass,
    token: options.token,
    authenticator: authenticator.length > 0 ? authenticator : undefined,
    tls: options.tls ? { ...options.tls } : undefined,
    timeout: options.timeoutMs ?? 10_000,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1_000,
    reconnectJitter: 200,
    // notice a dead server within ~30 s rather than the default 4 minutes
    pingInterval: 10_000,
    maxPingOut: 3,
  };
  try {
    return await connect(connectOptions);
  } catch (error) {
    throw new Error(
      `cannot connect to NATS at ${servers.map(redactUrl).join(", ")}: ${errorMessage(error)}`,
      {
        cause: error,
      },
    );
  }
}

async function authenticators(options: NatsConnectOptions): Promise<Authenticator[]> {
  const found: Authenticator[] = [];
  if (options.credsFile) {
    found.push(credsAuthenticator(await readSecret(options.credsFile, "credentials")));
  }
  if (options.nkeyFile) {
    const seed = new TextDecoder().decode(await readSecret(options.nkeyFile, "nkey seed")).trim();
    found.push(nkeyAuthenticator(new TextEncoder().encode(seed)));
  }
  return found;
}

async function readSecret(path: string, what: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new Error(`cannot read the NATS ${what} file ${path}: ${errorMessage(error)}`, { cause: error });
  }
}
