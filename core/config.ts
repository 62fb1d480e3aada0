import { readFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { autoscaleConfigSchema } from "./autoscale-config.js";
import { parseSizeBytes } from "./definitions/units/size.js";
import { durationSchema } from "./duration-schema.js";
import { TaskframeError, TaskframeErrorCode } from "./errors.js";

/*
 * Configuration of the long-running processes (`task hub`, `task sidecar`):
 * each key can come from a flag, an environment variable or a YAML file,
 * in that order of precedence, and is validated once, at start, into an
 * immutable object. Keys are spelled like the flags (`ack-wait`); the
 * environment variable is TASKFRAME_ + the key in upper snake case
 * (TASKFRAME_ACK_WAIT).
 */

export type RawConfig = Record<string, unknown>;

const duration = durationSchema;

const positiveInt = z.coerce.number().int().positive();
const flag = z
  .union([z.boolean(), z.enum(["true", "false", "yes", "no", "1", "0", "on", "off"])])
  .transform((value) => value === true || ["true", "yes", "1", "on"].includes(String(value)));
const size = () =>
  z.union([z.string(), z.number()]).transform((value, context) => {
    try {
      return parseSizeBytes(String(value));
    } catch (error) {
      context.addIssue({ code: "custom", message: (error as Error).message });
      return z.NEVER;
    }
  });
const list = z
  .union([z.string(), z.array(z.string())])
  .transform((value) =>
    (Array.isArray(value) ? value : value.split(",")).map((v) => v.trim()).filter(Boolean),
  );
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

const natsShape = {
  nats: list.pipe(z.array(z.string().min(1)).min(1, "give at least one NATS server URL")),
  namespace: z.string().regex(NAME, "letters, digits, '_' or '-'").default("taskframe"),
  "nats-user": z.string().optional(),
  "nats-password": z.string().optional(),
  "nats-token": z.string().optional(),
  "nats-creds": z.string().optional(),
  "nats-nkey": z.string().optional(),
  "nats-tls-ca": z.string().optional(),
  "nats-tls-cert": z.string().optional(),
  "nats-tls-key": z.string().optional(),
  replicas: positiveInt.max(5).default(1),
  storage: z.enum(["file", "memory"]).default("file"),
  "ack-wait": duration().default(30_000),
  "max-deliveries": positiveInt.default(5),
  "dedupe-window": duration().default(120_000),
  "log-level": z.enum(["trace", "debug", "info", "warn", "error", "silent"]).default("info"),
};

export const hubConfigSchema = z.strictObject({
  ...natsShape,
  db: z.string().regex(/^postgres(ql)?:\/\//, "a postgres:// URL"),
  listen: z
    .string()
    .regex(/^[^:]*:\d+$/, "HOST:PORT")
    .default("127.0.0.1:7070"),
  "reconcile-every": duration().default(10_000),
  "reconcile-after": duration().default(60_000),
  /** At most this many retries released per second, by all hubs together; 0: no limit. */
  "retry-budget": z.coerce.number().min(0).default(0),
  /** Delete runs finished longer ago than this, with their tasks, events and logs; 0 keeps them all. */
  retention: duration().default(0),
  /** How often the leading hub prunes past the retention window. */
  "retention-every": duration().default(600_000),
  /** Auto-provisioning of sidecar hosts (only in the YAML config file; docs/autoscaling.md). */
  autoscale: autoscaleConfigSchema.optional(),
  /** Per-pool maximums of tasks' limits and the env they may set (hub/admission.ts, SECURITY.md). */
  "pool-policy": z.string().min(1).optional(),
  /** One task's encoded spec (above NATS's max_payload it could never be delivered). */
  "max-task-spec-bytes": size().default(2n ** 20n),
  /** One API request (a submission's specs together, an output): the Connect adapter's readMaxBytes. */
  "max-request-bytes": size().default(256n * 2n ** 20n),
  /** A handler task's output (PutTaskOutput). */
  "max-output-bytes": size().default(64n * 2n ** 20n),
  "shutdown-timeout": duration().default(10_000),
  /** API authentication (docs/security-auth.md): a YAML file of tokens, JWT keys, the task token secret. */
  "auth-tokens": z.string().min(1).optional(),
  "auth-jwt-secret-file": z.string().min(1).optional(),
  "auth-jwt-public-key": z.string().min(1).optional(),
  "task-token-secret-file": z.string().min(1).optional(),
  /** HTTPS for the API and dashboard (core/hub-tls.ts); with a client CA, mutual TLS. */
  "tls-cert": z.string().min(1).optional(),
  "tls-key": z.string().min(1).optional(),
  "tls-client-ca": z.string().min(1).optional(),
});

export const sidecarConfigSchema = z.strictObject({
  ...natsShape,
  hub: z.string().url().optional(),
  /** Bearer token for the hub's API (a token of role sidecar; env TASKFRAME_HUB_TOKEN). */
  "hub-token": z.string().min(1).optional(),
  /** What an https:// hub is trusted by, and the client certificate it may require. */
  "hub-tls-ca": z.string().min(1).optional(),
  "hub-tls-cert": z.string().min(1).optional(),
  "hub-tls-key": z.string().min(1).optional(),
  /** Signs tasks' TASKFRAME_TASK_TOKEN; the hub's secret (else env TASKFRAME_TASK_TOKEN_SECRET). */
  "task-token-secret-file": z.string().min(1).optional(),
  pool: list
    .pipe(z.array(z.string().regex(NAME, "pool names are letters, digits, '_' or '-'")).min(1))
    .default(["default"]),
  slots: positiveInt.optional(),
  host: z.string().min(1).default(hostname()),
  labels: z
    .union([z.string(), z.record(z.string(), z.string())])
    .default({})
    .transform(parseLabels),
  "kill-grace": duration().default(5_000),
  "log-max-bytes": positiveInt.default(16 * 2 ** 20),
  "ledger-dir": z.string().optional(),
  "drain-timeout": duration().default(30_000),
  /** The Runner protocol's unix socket for SDK workers (TASKFRAME_SOCKET). */
  socket: z.string().min(1).optional(),
  /** Worker pools to start and supervise: `.worker` units, or YAML files with a `workers:` map. */
  workers: list.default([]),
  /** Also serve the Runner protocol on this local TCP address. */
  "runner-listen": z
    .string()
    .regex(/^[^:]*:\d+$/, "HOST:PORT")
    .optional(),
  /** Serve Prometheus metrics at http://HOST:PORT/metrics. */
  "metrics-listen": z
    .string()
    .regex(/^[^:]*:\d+$/, "HOST:PORT")
    .optional(),
  /** Loader/interpreter variables (core/forbidden-env.ts) tasks may set here; the rest are stripped. */
  "allow-env": list.default([]),
  ...jailShape(),
});

/** The jail, limits and install settings of a pool's sidecar (README "Jail, limits and installs"). */
export function jailShape() {
  return {
    jail: z.enum(["auto", "none", "standard", "strict"]).default("auto"),
    "jail-user": z.string().min(1).default("nobody"),
    "allow-unenforced-limits": flag.default(false),
    "default-pids": positiveInt.max(4_194_304).default(4096),
    "default-tmp-size": size().default(1024n ** 3n),
    "install-cache": z.string().min(1).optional(),
    "install-cache-size": size().default(10n * 1024n ** 3n),
    "allow-apt": flag.default(false),
  };
}

export type HubConfig = Readonly<z.output<typeof hubConfigSchema>>;
export type SidecarConfig = Readonly<z.output<typeof sidecarConfigSchema>> & {
  ledgerDir: string;
  socketPath: string;
};

/** `k=v,k2=v2` into a map. */
function parseLabels(
  value: string | Record<string, string>,
  context: z.RefinementCtx,
): Record<string, string> {
  if (typeof value !== "string") return value;
  const labels: Record<string, string> = {};
  for (const pair of value.split(",").filter((p) => p.trim())) {
    const [key, ...rest] = pair.split("=");
    if (!key?.trim() || rest.length === 0) {
      context.addIssue({ code: "custom", message: `labels: '${pair}' is not key=value` });
      return z.NEVER;
    }
    labels[key.trim()] = rest.join("=").trim();
  }
  return labels;
}

/** flags > environment > file; `file` is the path given by --config (or TASKFRAME_CONFIG). */
export function gatherConfig(keys: readonly string[], flags: RawConfig, file: string | undefined): RawConfig {
  const fromFile = file ? readConfigFile(file) : {};
  const raw: RawConfig = {};
  for (const key of keys) {
    const envValue = process.env[`TASKFRAME_${key.toUpperCase().replace(/-/g, "_")}`];
    const value = flags[key] ?? (envValue === "" ? undefined : envValue) ?? fromFile[key];
    if (value !== undefined) raw[key] = value;
  }
  for (const key of Object.keys(fromFile)) if (!keys.includes(key)) raw[key] = fromFile[key];
  return raw;
}

function readConfigFile(file: string): RawConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new TaskframeError(
      TaskframeErrorCode.InvalidArgument,
      `cannot read config file ${file}: ${(error as Error).message}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text, { maxAliasCount: 100 });
  } catch (error) {
    // a syntax error, an alias without its anchor: the file named, one line
    throw new TaskframeError(
      TaskframeErrorCode.InvalidArgument,
      `${file}: ${(error as Error).message.split("\n")[0]}`,
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new TaskframeError(TaskframeErrorCode.InvalidArgument, `${file}: expected a map of settings`);
  }
  return parsed as RawConfig;
}

function validate<S extends z.ZodType>(schema: S, raw: RawConfig, what: string): z.output<S> {
  const result = schema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const key = issue.path.join(".");
      if (issue.code === "unrecognized_keys")
        return `unknown setting ${issue.keys.map((k) => `'${k}'`).join(", ")}`;
      return key ? `'${key}': ${issue.message}` : issue.message;
    });
    throw new TaskframeError(
      TaskframeErrorCode.InvalidArgument,
      `${what} configuration: ${problems.join("; ")}`,
    );
  }
  return result.data;
}

export const HUB_KEYS = Object.keys(hubConfigSchema.shape);
export const SIDECAR_KEYS = Object.keys(sidecarConfigSchema.shape);

export function loadHubConfig(flags: RawConfig, file?: string): HubConfig {
  return Object.freeze(validate(hubConfigSchema, gatherConfig(HUB_KEYS, flags, file), "hub"));
}

export function loadSidecarConfig(flags: RawConfig, file?: string): SidecarConfig {
  const config = validate(sidecarConfigSchema, gatherConfig(SIDECAR_KEYS, flags, file), "sidecar");
  const ledgerDir =
    config["ledger-dir"] ?? join(tmpdir(), `taskframe-sidecar-${config.host}-${config.namespace}`);
  const socketPath = config.socket ?? join(tmpdir(), `taskframe-${config.host}-${config.namespace}.sock`);
  return Object.freeze({ ...config, ledgerDir, socketPath });
}
