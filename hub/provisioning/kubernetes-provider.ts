import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { formatDuration } from "../../core/definitions/duration.js";
import { errorMessage } from "../../core/errors.js";
import {
  type CreateHostRequest,
  type HostProvider,
  type ProvidedHost,
  type ProvidedHostState,
  ProviderUnavailableError,
} from "./provider.js";

/** The StatefulSet's label naming the pool its sidecars serve. */
export const POOL_LABEL = "taskframe.dev/pool";
/** JSON `{ "<token>": { "ordinal": 3, "createdAtMs": 1700000000000 } }`: which create made which ordinal. */
export const HOST_TOKENS_ANNOTATION = "taskframe.dev/host-tokens";
/** JSON `[1, 5]`: deleted ordinals that the StatefulSet cannot remove yet (see `shrinkPastRemoved`). */
export const REMOVE_ANNOTATION = "taskframe.dev/remove";

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
const CONFLICT_ATTEMPTS = 5;
const MERGE_PATCH = "application/merge-patch+json";

export interface KubernetesHostProviderOptions {
  /** The API server, e.g. https://kubernetes.default.svc */
  apiUrl: string;
  namespace: string;
  /** The StatefulSet of the pool's sidecars. */
  statefulSet: string;
  /** Bearer token; default: the pod's service-account token, read on every call (the kubelet rotates it). */
  token?: string;
  /** Per call, including conflict retries (default 10 s). */
  timeoutMs?: number;
  /** CA of the API server's certificate; default: the service account's ca.crt, when there is one. */
  caFile?: string;
}

// What the provider reads of the API's objects. Unknown fields are dropped.

const stringMap = z.record(z.string(), z.string());

const objectMetaSchema = z.object({
  name: z.string(),
  resourceVersion: z.string().optional(),
  creationTimestamp: z.string().nullish(),
  deletionTimestamp: z.string().nullish(),
  labels: stringMap.nullish(),
  annotations: stringMap.nullish(),
});

const labelSelectorSchema = z.object({
  matchLabels: stringMap.nullish(),
  matchExpressions: z
    .array(
      z.object({
        key: z.string(),
        operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]),
        values: z.array(z.string()).nullish(),
      }),
    )
    .nullish(),
});
type LabelSelector = z.infer<typeof labelSelectorSchema>;

const statefulSetSchema = z.object({
  metadata: objectMetaSchema.extend({ resourceVersion: z.string().min(1) }),
  spec: z.object({ replicas: z.number().int().min(0).default(1), selector: labelSelectorSchema }),
});
type StatefulSet = z.infer<typeof statefulSetSchema>;

const podSchema = z.object({
  metadata: objectMetaSchema,
  status: z
    .object({
      phase: z.string().optional(),
      reason: z.string().optional(),
      message: z.string().optional(),
      conditions: z.array(z.object({ type: z.string(), status: z.string() })).nullish(),
    })
    .default({}),
});
type Pod = z.infer<typeof podSchema>;

const podListSchema = z.object({ items: z.array(podSchema) });

const statusSchema = z.object({ message: z.string().optional(), reason: z.string().optional() });

const hostTokensSchema = z.record(
  z.string(),
  z.object({ ordinal: z.number().int().min(0), createdAtMs: z.number() }),
);
const removeSchema = z.array(z.number().int().min(0));

interface HostRecord {
  ordinal: number;
  createdAtMs: number;
}

/** The pool as the StatefulSet describes it, annotations decoded. */
interface PoolState {
  resourceVersion: string;
  pool: string | undefined;
  replicas: number;
  /** The pods' label selector, in the syntax of `?labelSelector=`. */
  selector: string;
  createdAtMs: number;
  /** token → host, for ordinals below `replicas` only (older entries are left from a scale-down by hand). */
  hosts: Map<string, HostRecord>;
  tokensByOrdinal: Map<number, string>;
  /** Deleted ordinals below `replicas`, waiting for the ones above them. */
  removing: Set<number>;
}

/** What a write leaves on the StatefulSet. */
interface PoolChange {
  replicas: number;
  hosts: Map<string, HostRecord>;
  removing: ReadonlySet<number>;
}

/**
 * A StatefulSet only ever removes its highest ordinals: scaling 4 → 3 removes
 * pod 3, and there is no way to remove pod 1 alone. So a deleted host is first
 * marked (REMOVE_ANNOTATION), and replicas drop past the highest contiguous
 * run of marked ordinals: with replicas 4, deleting 3 gives replicas 3;
 * deleting 1 then changes nothing but the mark; deleting 2 later gives
 * replicas 1 (2 and 1 go together). A marked host's pod keeps running until
 * then; the provider reports it as terminating.
 */
export function shrinkPastRemoved(
  replicas: number,
  removing: ReadonlySet<number>,
): { replicas: number; removing: Set<number> } {
  const marked = new Set([...removing].filter((ordinal) => ordinal < replicas));
  let remaining = replicas;
  while (remaining > 0 && marked.has(remaining - 1)) marked.delete(--remaining);
  return { replicas: remaining, removing: marked };
}

/**
 * Sidecar hosts as the pods of one StatefulSet (docs/kubernetes.md): host
 * `<statefulSet>-<n>` is pod n. `create` scales the StatefulSet up by one,
 * `delete` scales it down as far as `shrinkPastRemoved` allows. The token of
 * each create is kept in an annotation written together with the replica
 * count, under the StatefulSet's resourceVersion, so a retried create never
 * makes a second pod. The size and labels of a create are not applied: every
 * pod runs the StatefulSet's template.
 *
 * It never retries across calls: a timeout, a network error, a 429, a 5xx or
 * a write conflict that outlasts a few quick re-reads throw
 * ProviderUnavailableError; any other 4xx throws an Error with the API
 * server's message.
 */
export class KubernetesHostProvider implements HostProvider {
  readonly kind = "kubernetes";
  readonly #api: KubernetesApi;
  readonly #namespace: string;
  readonly #statefulSet: string;
  readonly #timeoutMs: number;
  /** Writes of this provider, one at a time: concurrent creates would only conflict with each other. */
  #writes: Promise<unknown> = Promise.resolve();

  constructor(options: KubernetesHostProviderOptions) {
    if (!options.namespace || !options.statefulSet) {
      throw new Error("kubernetes provider: namespace and statefulSet are required");
    }
    this.#namespace = options.namespace;
    this.#statefulSet = options.statefulSet;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#api = new KubernetesApi(options);
  }

  async create(request: CreateHostRequest, signal?: AbortSignal): Promise<ProvidedHost> {
    return this.#withDeadline(`create for pool '${request.pool}'`, signal, async (deadline) => {
      const created = await this.#serialized(() =>
        this.#update(deadline, (current) => this.#planCreate(current, request)),
      );
      const { ordinal, createdAtMs } = created.result;
      const id = this.#podName(ordinal);
      if (!created.wrote) {
        // an earlier create with this token made the host; below replicas, it is listed
        return this.#host(created.state, ordinal, await this.#readPod(id, deadline))!;
      }
      return {
        id,
        pool: request.pool,
        state: "provisioning",
        labels: {},
        token: request.token,
        createdAtMs,
      };
    });
  }

  #planCreate(state: PoolState, request: CreateHostRequest): { result: HostRecord; change?: PoolChange } {
    this.#checkPool(state, request.pool);
    const existing = state.hosts.get(request.token);
    if (existing) return { result: existing };
    const record = { ordinal: state.replicas, createdAtMs: Date.now() };
    const hosts = new Map(state.hosts).set(request.token, record);
    return { result: record, change: { replicas: state.replicas + 1, hosts, removing: state.removing } };
  }

  async get(id: string, signal?: AbortSignal): Promise<ProvidedHost | undefined> {
    const ordinal = this.#ordinalOf(id);
    if (ordinal === undefined) return undefined;
    return this.#withDeadline(`get ${id}`, signal, async (deadline) => {
      const [state, pod] = await Promise.all([this.#readPool(deadline), this.#readPod(id, deadline)]);
      return this.#host(state, ordinal, pod);
    });
  }

  async list(pool: string, signal?: AbortSignal): Promise<ProvidedHost[]> {
    return this.#withDeadline(`list pool '${pool}'`, signal, async (deadline) => {
      const state = await this.#readPool(deadline);
      if (state.pool !== pool) return [];
      const pods = new Map<number, Pod>();
      for (const pod of await this.#listPods(state.selector, deadline)) {
        const ordinal = this.#ordinalOf(pod.metadata.name);
        if (ordinal !== undefined) pods.set(ordinal, pod);
      }
      const ordinals = new Set([...Array(state.replicas).keys(), ...pods.keys()]);
      return [...ordinals]
        .sort((a, b) => a - b)
        .map((ordinal) => this.#host(state, ordinal, pods.get(ordinal)))
        .filter((host) => host !== undefined);
    });
  }

  async delete(id: string, signal?: AbortSignal): Promise<void> {
    const ordinal = this.#ordinalOf(id);
    if (ordinal === undefined) return;
    await this.#withDeadline(`delete ${id}`, signal, (deadline) =>
      this.#serialized(() =>
        this.#update(deadline, (state) => {
          if (ordinal >= state.replicas || state.removing.has(ordinal)) return { result: undefined };
          const shrunk = shrinkPastRemoved(state.replicas, new Set(state.removing).add(ordinal));
          return { result: undefined, change: { ...shrunk, hosts: state.hosts } };
        }),
      ),
    );
  }

  async close(): Promise<void> {
    this.#api.close();
  }

  /**
   * Reads the pool, lets `decide` plan a change and writes it under the
   * resourceVersion it read. A conflict (someone else wrote in between, or
   * the StatefulSet controller updated its status) means: read again.
   */
  async #update<T>(
    signal: AbortSignal,
    decide: (state: PoolState) => { result: T; change?: PoolChange },
  ): Promise<{ result: T; state: PoolState; wrote: boolean }> {
    for (let attempt = 1; ; attempt++) {
      const state = await this.#readPool(signal);
      const { result, change } = decide(state);
      if (!change) return { result, state, wrote: false };
      const response = await this.#api.call("PATCH", this.#statefulSetPath(), signal, {
        body: this.#patch(state, change),
        contentType: MERGE_PATCH,
        alsoAccept: [409],
      });
      if (response.status !== 409) {
        this.#api.parse(`PATCH ${this.#statefulSetPath()}`, response, statefulSetSchema);
        return { result, state, wrote: true };
      }
      if (attempt === CONFLICT_ATTEMPTS) {
        throw new ProviderUnavailableError(
          `kubernetes provider: statefulset ${this.#namespace}/${this.#statefulSet} changed under each of ` +
            `${CONFLICT_ATTEMPTS} writes (409 Conflict): ${apiReason(response.text)}`,
        );
      }
      // spread contending writers apart; a conflict is normal, not an outage
      await sleep(attempt * (10 + Math.random() * 40), undefined, { signal }).catch(() => {
        throw signal.reason;
      });
    }
  }

  #patch(state: PoolState, change: PoolChange): unknown {
    const hosts = [...change.hosts].filter(([, host]) => host.ordinal < change.replicas);
    return {
      metadata: {
        resourceVersion: state.resourceVersion,
        annotations: {
          [HOST_TOKENS_ANNOTATION]: JSON.stringify(Object.fromEntries(hosts)),
          [REMOVE_ANNOTATION]: JSON.stringify([...change.removing].sort((a, b) => a - b)),
        },
      },
      spec: { replicas: change.replicas },
    };
  }

  async #readPool(signal: AbortSignal): Promise<PoolState> {
    const path = this.#statefulSetPath();
    const response = await this.#api.call("GET", path, signal);
    return this.#poolState(this.#api.parse(`GET ${path}`, response, statefulSetSchema));
  }

  #poolState(set: StatefulSet): PoolState {
    const { replicas } = set.spec;
    const annotations = set.metadata.annotations ?? {};
    const tokens = this.#annotation(annotations, HOST_TOKENS_ANNOTATION, hostTokensSchema) ?? {};
    const removing = this.#annotation(annotations, REMOVE_ANNOTATION, removeSchema) ?? [];
    const hosts = new Map(Object.entries(tokens).filter(([, host]) => host.ordinal < replicas));
    return {
      resourceVersion: set.metadata.resourceVersion,
      pool: set.metadata.labels?.[POOL_LABEL],
      replicas,
      selector: this.#selectorString(set.spec.selector),
      createdAtMs: Date.parse(set.metadata.creationTimestamp ?? "") || Date.now(),
      hosts,
      tokensByOrdinal: new Map([...hosts].map(([token, host]) => [host.ordinal, token])),
      removing: new Set(removing.filter((ordinal) => ordinal < replicas)),
    };
  }

  #annotation<T>(annotations: Record<string, string>, key: string, schema: z.ZodType<T>): T | undefined {
    const text = annotations[key];
    if (text === undefined) return undefined;
    let parsed: z.ZodSafeParseResult<T>;
    try {
      parsed = schema.safeParse(JSON.parse(text));
    } catch {
      parsed = schema.safeParse(undefined);
    }
    if (parsed.success) return parsed.data;
    throw new Error(
      `kubernetes provider: the annotation ${key} of statefulset ${this.#namespace}/${this.#statefulSet} ` +
        `is not what the provider writes (${issues(parsed.error)}); fix or remove it`,
    );
  }

  #selectorString(selector: LabelSelector): string {
    const terms = [
      ...Object.entries(selector.matchLabels ?? {}).map(([key, value]) => `${key}=${value}`),
      ...(selector.matchExpressions ?? []).map(({ key, operator, values }) => {
        if (operator === "Exists") return key;
        if (operator === "DoesNotExist") return `!${key}`;
        return `${key} ${operator === "In" ? "in" : "notin"} (${(values ?? []).join(",")})`;
      }),
    ];
    if (terms.length === 0) {
      throw new Error(
        `kubernetes provider: statefulset ${this.#namespace}/${this.#statefulSet} has an empty selector`,
      );
    }
    return terms.join(",");
  }

  async #listPods(selector: string, signal: AbortSignal): Promise<Pod[]> {
    const path = `/api/v1/namespaces/${encodeURIComponent(this.#namespace)}/pods?${new URLSearchParams({ labelSelector: selector })}`;
    const response = await this.#api.call("GET", path, signal);
    return this.#api.parse(`GET ${path}`, response, podListSchema).items;
  }

  async #readPod(name: string, signal: AbortSignal): Promise<Pod | undefined> {
    const path = `/api/v1/namespaces/${encodeURIComponent(this.#namespace)}/pods/${encodeURIComponent(name)}`;
    const response = await this.#api.call("GET", path, signal, { alsoAccept: [404] });
    return response.status === 404 ? undefined : this.#api.parse(`GET ${path}`, response, podSchema);
  }

  /** Host `ordinal` as `state` and its pod (if any) show it; undefined when it is gone. */
  #host(state: PoolState, ordinal: number, pod: Pod | undefined): ProvidedHost | undefined {
    if (ordinal >= state.replicas && !pod) return undefined;
    const token = state.tokensByOrdinal.get(ordinal);
    const record = token === undefined ? undefined : state.hosts.get(token);
    const goingAway = ordinal >= state.replicas || state.removing.has(ordinal);
    const { state: hostState, detail } = goingAway
      ? { state: "terminating" as const, detail: undefined }
      : podState(pod);
    return {
      id: this.#podName(ordinal),
      pool: state.pool ?? "",
      state: hostState,
      labels: {},
      token: token ?? "",
      createdAtMs:
        record?.createdAtMs ?? (Date.parse(pod?.metadata.creationTimestamp ?? "") || state.createdAtMs),
      ...(detail ? { detail } : {}),
    };
  }

  #checkPool(state: PoolState, pool: string): void {
    const where = `statefulset ${this.#namespace}/${this.#statefulSet}`;
    if (state.pool === undefined) {
      throw new Error(`kubernetes provider: ${where} has no ${POOL_LABEL} label, so it serves no pool`);
    }
    if (state.pool !== pool) {
      throw new Error(`kubernetes provider: ${where} serves pool '${state.pool}', not '${pool}'`);
    }
  }

  #podName(ordinal: number): string {
    return `${this.#statefulSet}-${ordinal}`;
  }

  #ordinalOf(id: string): number | undefined {
    const prefix = `${this.#statefulSet}-`;
    if (!id.startsWith(prefix)) return undefined;
    const rest = id.slice(prefix.length);
    return /^(0|[1-9]\d{0,8})$/.test(rest) ? Number(rest) : undefined;
  }

  #statefulSetPath(): string {
    return `/apis/apps/v1/namespaces/${encodeURIComponent(this.#namespace)}/statefulsets/${encodeURIComponent(this.#statefulSet)}`;
  }

  #serialized<T>(run: () => Promise<T>): Promise<T> {
    const result = this.#writes.then(run, run);
    this.#writes = result.catch(() => {});
    return result;
  }

  /** Runs one provider call under the caller's signal and this provider's timeout. */
  async #withDeadline<T>(
    what: string,
    caller: AbortSignal | undefined,
    run: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    caller?.throwIfAborted();
    const timeout = new AbortController();
    const timer = setTimeout(() => {
      timeout.abort(
        new ProviderUnavailableError(
          `kubernetes provider: ${what} on statefulset ${this.#namespace}/${this.#statefulSet} ` +
            `got no answer within ${formatDuration(this.#timeoutMs)}`,
        ),
      );
    }, this.#timeoutMs);
    try {
      return await run(caller ? AbortSignal.any([caller, timeout.signal]) : timeout.signal);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * The state of a host that is staying, from its pod. A pod being deleted
 * while its ordinal stays (evicted, deleted by hand) is replaced by the
 * StatefulSet: provisioning, not terminating.
 */
function podState(pod: Pod | undefined): { state: ProvidedHostState; detail?: string } {
  if (!pod || pod.metadata.deletionTimestamp) return { state: "provisioning" };
  const { phase, reason, message, conditions } = pod.status;
  // Succeeded too: a sidecar's pod restarts it, so an ended pod is not a host any more
  if (phase === "Failed" || phase === "Succeeded") {
    return { state: "failed", detail: message ?? reason ?? `the pod's phase is ${phase}` };
  }
  const ready = conditions?.some((condition) => condition.type === "Ready" && condition.status === "True");
  return { state: phase === "Running" && ready ? "running" : "provisioning" };
}

interface ApiResponse {
  status: number;
  text: string;
}

/** HTTP to the API server: bearer token, CA, error mapping. One exchange per call, never retried. */
class KubernetesApi {
  readonly #baseUrl: string;
  readonly #token: string | undefined;
  readonly #agent: HttpAgent | HttpsAgent;
  readonly #https: boolean;

  constructor(options: KubernetesHostProviderOptions) {
    const url = new URL(options.apiUrl);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new Error(
        `kubernetes provider: expected an http(s):// API URL, got ${JSON.stringify(options.apiUrl)}`,
      );
    }
    this.#baseUrl = url.href.replace(/\/+$/, "");
    this.#token = options.token;
    this.#https = url.protocol === "https:";
    const caFile = options.caFile ?? inClusterFile("ca.crt");
    this.#agent = this.#https
      ? new HttpsAgent({ keepAlive: true, ...(caFile ? { ca: readFileSync(caFile) } : {}) })
      : new HttpAgent({ keepAlive: true });
  }

  /** Answers with a 2xx or one of `alsoAccept`; throws for anything else. */
  async call(
    method: string,
    path: string,
    signal: AbortSignal,
    options: { body?: unknown; contentType?: string; alsoAccept?: number[] } = {},
  ): Promise<ApiResponse> {
    const headers: Record<string, string> = { accept: "application/json" };
    const token = this.#token ?? (await serviceAccountToken());
    if (token) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers["content-type"] = options.contentType ?? "application/json";
    }
    let response: ApiResponse;
    try {
      response = await this.#exchange(new URL(`${this.#baseUrl}${path}`), method, headers, body, signal);
    } catch (error) {
      // the caller's cancellation passes as it is; the timeout's reason is a ProviderUnavailableError
      if (signal.aborted) throw signal.reason;
      throw new ProviderUnavailableError(
        `kubernetes provider: ${method} ${this.#baseUrl}${path} failed: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    const { status } = response;
    if ((status >= 200 && status < 300) || options.alsoAccept?.includes(status)) return response;
    throw this.#failure(`${method} ${path}`, response);
  }

  parse<T>(what: string, response: ApiResponse, schema: z.ZodType<T>): T {
    let json: unknown;
    try {
      json = JSON.parse(response.text);
    } catch {
      throw new ProviderUnavailableError(
        `kubernetes provider: ${what} answered ${response.status} with a body that is not JSON: ${excerpt(response.text)}`,
      );
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new ProviderUnavailableError(
        `kubernetes provider: ${what} answered ${response.status} with an unexpected object: ${issues(parsed.error)}`,
      );
    }
    return parsed.data;
  }

  close(): void {
    this.#agent.destroy();
  }

  #failure(what: string, response: ApiResponse): Error {
    const { status } = response;
    const reason = apiReason(response.text);
    if (status >= 500 || status === 429) {
      return new ProviderUnavailableError(`kubernetes provider: ${what} failed with ${status}: ${reason}`);
    }
    const hint =
      status === 401
        ? " (check the provider's token)"
        : status === 403
          ? " (the hub's service account needs the Role in docs/kubernetes.md)"
          : "";
    return new Error(`kubernetes provider: ${what} was refused with ${status}: ${reason}${hint}`);
  }

  #exchange(
    url: URL,
    method: string,
    headers: Record<string, string>,
    body: string | undefined,
    signal: AbortSignal,
  ): Promise<ApiResponse> {
    const send = this.#https ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const request = send(url, { method, headers, agent: this.#agent, signal }, (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
        );
        response.on("error", reject);
        response.on("close", () => {
          if (!response.complete) reject(new Error("the connection closed before the whole answer came"));
        });
      });
      request.on("error", reject);
      request.end(body);
    });
  }
}

function inClusterFile(name: string): string | undefined {
  const path = `${SERVICE_ACCOUNT_DIR}/${name}`;
  return existsSync(path) ? path : undefined;
}

async function serviceAccountToken(): Promise<string | undefined> {
  try {
    return (await readFile(`${SERVICE_ACCOUNT_DIR}/token`, "utf8")).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** The `reason: message` of a Kubernetes Status body, else an excerpt of the body. */
function apiReason(text: string): string {
  try {
    const parsed = statusSchema.safeParse(JSON.parse(text));
    if (parsed.success && (parsed.data.message || parsed.data.reason)) {
      const { reason, message } = parsed.data;
      return reason && message && message !== reason ? `${reason}: ${message}` : (message ?? reason ?? "");
    }
  } catch {
    // not JSON: the raw text says more than nothing
  }
  return text.trim() === "" ? "(empty body)" : excerpt(text);
}

function issues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join(".") : "(value)"}: ${issue.message}`)
    .join("; ");
}

function excerpt(text: string): string {
  const oneLine = text.replace(/\s+/g, " ").trim();
  return JSON.stringify(oneLine.length > 200 ? `${oneLine.slice(0, 200)}…` : oneLine);
}
