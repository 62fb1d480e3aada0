import type { Command } from "commander";
import {
  HUB_KEYS,
  loadHubConfig,
  loadSidecarConfig,
  type RawConfig,
  SIDECAR_KEYS,
} from "../../core/config.js";
import { ExitCode } from "../cli-error.js";

/** Flags shared by the hub and the sidecar: NATS, its auth and the queue's settings. */
const NATS_FLAGS: [string, string][] = [
  ["--nats <urls>", "NATS server URL(s), comma separated (env TASKFRAME_NATS)"],
  ["--namespace <name>", "prefix of every subject and stream (default: taskframe)"],
  ["--nats-user <user>", "NATS user"],
  ["--nats-password <password>", "NATS password"],
  ["--nats-token <token>", "NATS token"],
  ["--nats-creds <file>", "NATS credentials file (JWT + nkey)"],
  ["--nats-nkey <file>", "NATS nkey seed file"],
  ["--nats-tls-ca <file>", "CA certificate for NATS TLS"],
  ["--nats-tls-cert <file>", "client certificate for NATS TLS"],
  ["--nats-tls-key <file>", "client key for NATS TLS"],
  ["--replicas <n>", "JetStream replicas of the streams (default 1; 3 in a cluster)"],
  ["--storage <kind>", "JetStream storage: file (default) or memory"],
  ["--ack-wait <duration>", "lease length of a work item (default 30s); heartbeats every third of it"],
  ["--max-deliveries <n>", "deliveries of one work item before it is a dead letter (default 5)"],
  ["--dedupe-window <duration>", "how long a publication id is remembered (default 2m)"],
  ["--log-level <level>", "trace, debug, info (default), warn, error or silent"],
  ["--config <file>", "YAML file with any of these settings, spelled like the flags (env TASKFRAME_CONFIG)"],
];

/** The jail and limits of the tasks a sidecar (or `task run`) starts; see README "Jail, limits and installs". */
export const JAIL_FLAGS: [string, string][] = [
  [
    "--jail <profile>",
    "none, standard or strict; auto (default): standard where the host supports it (see task doctor)",
  ],
  ["--jail-user <user>", "who runs jailed tasks that set no User= when this runs as root (default nobody)"],
  [
    "--allow-unenforced-limits <yes|no>",
    "run a task whose limits this host cannot enforce, with a note (default no)",
  ],
  ["--default-pids <n>", "processes per task without LimitPids= (default 4096)"],
  ["--default-tmp-size <size>", "private /tmp per jailed task without LimitDisk= (default 1G)"],
];

function addFlags(command: Command, flags: [string, string][]): Command {
  for (const [flag, description] of flags) command.option(flag, description);
  return command;
}

/** Commander's camelCase option names back to the config keys (`ackWait` -> `ack-wait`). */
function rawConfig(options: Record<string, unknown>, keys: readonly string[]): RawConfig {
  const raw: RawConfig = {};
  for (const key of keys) {
    const camel = key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (options[camel] !== undefined) raw[key] = options[camel];
  }
  return raw;
}

const configFile = (options: Record<string, unknown>) =>
  (options.config as string | undefined) ?? (process.env.TASKFRAME_CONFIG || undefined);

export function addServiceCommands(program: Command, setExit: (code: number) => void): void {
  addFlags(program.command("hub"), [
    ["--db <url>", "Postgres URL (env TASKFRAME_DB)"],
    [
      "--listen <host:port>",
      "where the API and the web dashboard answer, HTTP/1.1 and h2c, or HTTPS with --tls-cert (default 127.0.0.1:7070)",
    ],
    ["--reconcile-every <duration>", "how often the leading hub checks for lost work items (default 10s)"],
    ["--reconcile-after <duration>", "a dispatched task unchanged this long is checked (default 1m)"],
    [
      "--retention <duration>",
      "delete runs finished longer ago than this, with their tasks, events and logs, and refused requests and schedule history as old (default: keep all)",
    ],
    ["--retention-every <duration>", "how often the leading hub prunes past --retention (default 10m)"],
    ["--shutdown-timeout <duration>", "how long open API streams get on SIGTERM (default 10s)"],
    [
      "--retry-budget <n>",
      "at most N retries released per second by all hubs together, the leader releasing them (default: no limit)",
    ],
    [
      "--auth-tokens <file>",
      "YAML file of API tokens (name, sha256 or token, tenants, role); see docs/security-auth.md",
    ],
    ["--auth-jwt-secret-file <file>", "also accept JWTs (HS256) signed with the secret in this file"],
    ["--auth-jwt-public-key <file>", "also accept JWTs signed by this PEM public key (RS256, ES256, EdDSA)"],
    [
      "--task-token-secret-file <file>",
      "secret shared with the sidecars that signs tasks' tokens; required with auth (env TASKFRAME_TASK_TOKEN_SECRET)",
    ],
    [
      "--pool-policy <file>",
      "YAML: per pool (or '*') the most a task may ask for (max_memory, max_disk, max_pids, max_cpu, max_timeout) and allow_env; see SECURITY.md",
    ],
    ["--max-task-spec-bytes <size>", "largest spec of one task (default 1M, NATS's max_payload)"],
    [
      "--max-request-bytes <size>",
      "largest API request, and all task specs of one submission (default 256M)",
    ],
    ["--max-output-bytes <size>", "largest output of a handler task (default 64M)"],
    [
      "--tls-cert <file>",
      "serve the API and dashboard over HTTPS with this PEM certificate (with --tls-key)",
    ],
    ["--tls-key <file>", "the PEM key of --tls-cert"],
    ["--tls-client-ca <file>", "require client certificates signed by this PEM CA (mutual TLS)"],
    ...NATS_FLAGS,
  ])
    .description("run a hub: the API, the recorder and the scheduler, on Postgres and NATS JetStream")
    .addHelpText(
      "after",
      "\nAny number of hubs can share a database and a NATS server. SIGTERM stops one gracefully.\n" +
        "Without --auth-tokens or --auth-jwt-*, the API answers loopback callers only (protected mode).",
    )
    .action(async (options: Record<string, unknown>) => {
      const config = loadHubConfig(rawConfig(options, HUB_KEYS), configFile(options));
      // loaded on use: a sidecar process never loads the hub (or its database drivers), and the other way round
      const { runHub } = await import("../../hub/run-hub.js");
      await runHub(config);
      setExit(ExitCode.Ok);
    });

  addFlags(program.command("sidecar"), [
    ["--hub <url>", "the hub's URL, asked about redelivered work (env TASKFRAME_HUB)"],
    ["--hub-token <token>", "bearer token (role sidecar) for the hub's API; prefer env TASKFRAME_HUB_TOKEN"],
    ["--hub-tls-ca <file>", "PEM CA to trust for an https:// hub (else the system's)"],
    ["--hub-tls-cert <file>", "PEM client certificate for a hub that requires one (with --hub-tls-key)"],
    ["--hub-tls-key <file>", "the PEM key of --hub-tls-cert"],
    [
      "--task-token-secret-file <file>",
      "secret shared with the hub that signs tasks' tokens (env TASKFRAME_TASK_TOKEN_SECRET)",
    ],
    ["--pool <pools>", "pools to lease work from, comma separated (default: default)"],
    ["--slots <n>", "tasks run at once (default: 8 per core)"],
    ["--host <name>", "this host's name in the audit trail (default: the hostname)"],
    ["--labels <k=v,...>", "labels describing this host"],
    ["--kill-grace <duration>", "SIGTERM to SIGKILL on timeout or cancel (default 5s)"],
    ["--log-max-bytes <n>", "output kept per attempt (default 16 MiB)"],
    ["--ledger-dir <dir>", "where running task processes are written down, to kill leftovers after a crash"],
    [
      "--drain-timeout <duration>",
      "on SIGTERM, how long running tasks may finish before they are handed back",
    ],
    ["--socket <path>", "unix socket where SDK workers connect (they read it from TASKFRAME_SOCKET)"],
    ["--runner-listen <host:port>", "also serve SDK workers on this local TCP address"],
    ["--metrics-listen <host:port>", "serve Prometheus metrics at http://HOST:PORT/metrics"],
    [
      "--workers <files>",
      "SDK worker pools to start and keep running: .worker units or YAML with workers:, comma separated",
    ],
    ...JAIL_FLAGS,
    [
      "--install-cache <dir>",
      "where declared dependencies are installed (default /var/cache/taskframe/installs as root)",
    ],
    ["--install-cache-size <size>", "evict least recently used installs above this size (default 10G)"],
    ["--allow-apt <yes|no>", "let tasks' [Install] apt= install Debian packages host-wide (default no)"],
    [
      "--allow-env <names>",
      "loader/interpreter variables (LD_PRELOAD, NODE_OPTIONS, ...) tasks may set, comma separated; others are stripped (default none)",
    ],
    ...NATS_FLAGS,
  ])
    .description("run a sidecar: lease work from NATS and run it on this host")
    .addHelpText(
      "after",
      "\nSIGTERM drains: no new work; running tasks finish or are handed back to the queue.",
    )
    .action(async (options: Record<string, unknown>) => {
      const config = loadSidecarConfig(rawConfig(options, SIDECAR_KEYS), configFile(options));
      const { runSidecar } = await import("../../sidecar/run-sidecar.js");
      await runSidecar(config);
      setExit(ExitCode.Ok);
    });
}
