import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * An in-memory Kubernetes API server with one StatefulSet and its pods: just
 * what KubernetesHostProvider uses, for tests. Pods follow `spec.replicas` as
 * a StatefulSet with `podManagementPolicy: Parallel` would: every missing
 * ordinal gets a Pending pod that turns Running and Ready after `podStartMs`;
 * pods at or above `replicas` get a deletionTimestamp and vanish after
 * `podStopMs`. Unlike a real cluster, status changes do not bump the
 * StatefulSet's resourceVersion: only API writes do.
 */
export interface FakeKubernetesOptions {
  /** Default "taskframe". */
  namespace?: string;
  /** The StatefulSet's name; default "sidecars". */
  statefulSet?: string;
  /** Its `taskframe.dev/pool` label; default "default". */
  pool?: string;
  /** Its `spec.selector.matchLabels`, also the pods' labels; default `{ app: <statefulSet> }`. */
  selector?: Record<string, string>;
  /** Default 0. */
  replicas?: number;
  annotations?: Record<string, string>;
  /** When set, every request must carry `Authorization: Bearer <token>` (else 401). */
  token?: string;
  /** From Pending to Running and Ready (default 0). */
  podStartMs?: number;
  /** From deletionTimestamp to gone (default 0). */
  podStopMs?: number;
}

export interface FakeStatefulSet {
  apiVersion: "apps/v1";
  kind: "StatefulSet";
  metadata: {
    name: string;
    namespace: string;
    resourceVersion: string;
    generation: number;
    creationTimestamp: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  };
  spec: {
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    serviceName: string;
    podManagementPolicy: "Parallel";
    template: { metadata: { labels: Record<string, string> } };
  };
  status: { replicas: number; readyReplicas: number };
}

export interface FakePod {
  apiVersion: "v1";
  kind: "Pod";
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    creationTimestamp: string;
    deletionTimestamp?: string;
  };
  status: { phase: "Pending" | "Running"; conditions: { type: "Ready"; status: "True" | "False" }[] };
}

export interface FakeKubernetes {
  /** Base URL, e.g. http://127.0.0.1:40123 */
  readonly url: string;
  readonly namespace: string;
  readonly name: string;
  /** Writes accepted (PATCH/PUT of the StatefulSet or its scale); refused ones are not counted. */
  readonly writes: number;
  /** A copy of the StatefulSet as it is now. */
  statefulSet(): FakeStatefulSet;
  /** Copies of the pods, by ordinal. */
  pods(): FakePod[];
  /** The next `count` writes answer 409 Conflict, as if someone else had written first. */
  conflictNext(count: number): void;
  /** The next `count` requests (any) answer `status` (default 503). */
  failNext(count: number, status?: number): void;
  close(): Promise<void>;
}

const POOL_LABEL = "taskframe.dev/pool";

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

class FakeCluster {
  readonly #set: FakeStatefulSet;
  readonly #pods = new Map<string, FakePod>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #podStartMs: number;
  readonly #podStopMs: number;
  #resourceVersion = 1;
  #closed = false;
  writes = 0;
  conflicts = 0;

  constructor(options: FakeKubernetesOptions) {
    const name = options.statefulSet ?? "sidecars";
    const selector = options.selector ?? { app: name };
    this.#podStartMs = options.podStartMs ?? 0;
    this.#podStopMs = options.podStopMs ?? 0;
    this.#set = {
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: {
        name,
        namespace: options.namespace ?? "taskframe",
        resourceVersion: String(this.#resourceVersion),
        generation: 1,
        creationTimestamp: new Date().toISOString(),
        labels: { [POOL_LABEL]: options.pool ?? "default" },
        annotations: { ...options.annotations },
      },
      spec: {
        replicas: options.replicas ?? 0,
        selector: { matchLabels: selector },
        serviceName: name,
        podManagementPolicy: "Parallel",
        template: { metadata: { labels: selector } },
      },
      status: { replicas: 0, readyReplicas: 0 },
    };
    this.reconcilePods();
  }

  get name(): string {
    return this.#set.metadata.name;
  }

  get namespace(): string {
    return this.#set.metadata.namespace;
  }

  statefulSet(): FakeStatefulSet {
    const pods = [...this.#pods.values()];
    this.#set.status = {
      replicas: pods.length,
      readyReplicas: pods.filter((pod) => pod.status.conditions[0]?.status === "True").length,
    };
    return structuredClone(this.#set);
  }

  scale() {
    return {
      apiVersion: "autoscaling/v1",
      kind: "Scale",
      metadata: {
        name: this.name,
        namespace: this.namespace,
        resourceVersion: this.#set.metadata.resourceVersion,
      },
      spec: { replicas: this.#set.spec.replicas },
      status: { replicas: this.#pods.size, selector: selectorString(this.#set.spec.selector.matchLabels) },
    };
  }

  pods(): FakePod[] {
    return [...this.#pods.values()]
      .sort((a, b) => ordinalOf(a.metadata.name) - ordinalOf(b.metadata.name))
      .map((pod) => structuredClone(pod));
  }

  pod(name: string): FakePod | undefined {
    const pod = this.#pods.get(name);
    return pod && structuredClone(pod);
  }

  /** A merge patch (RFC 7386) of the StatefulSet, with Kubernetes' resourceVersion precondition. */
  patchStatefulSet(patch: unknown): FakeStatefulSet {
    if (!isObject(patch)) throw new HttpProblem(400, "BadRequest", "the patch is not a JSON object");
    const patched = mergePatch(structuredClone(this.#set), patch) as FakeStatefulSet;
    this.#write(patched.metadata?.resourceVersion, () => {
      this.#set.metadata.labels = stringRecord(patched.metadata?.labels, "metadata.labels");
      this.#set.metadata.annotations = stringRecord(patched.metadata?.annotations, "metadata.annotations");
      this.#setReplicas(patched.spec?.replicas);
    });
    return this.statefulSet();
  }

  /** A PUT (`patch` false) or merge patch of the scale subresource. */
  writeScale(body: unknown, patch: boolean): ReturnType<FakeCluster["scale"]> {
    if (!isObject(body)) throw new HttpProblem(400, "BadRequest", "the body is not a JSON object");
    type ScaleBody = { metadata?: { resourceVersion?: unknown }; spec?: { replicas?: unknown } };
    const scale = (patch ? mergePatch(this.scale(), body) : body) as ScaleBody;
    this.#write((body as ScaleBody).metadata?.resourceVersion, () => this.#setReplicas(scale.spec?.replicas));
    return this.scale();
  }

  conflictNext(count: number): void {
    this.conflicts = count;
  }

  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  #write(expectedVersion: unknown, apply: () => void): void {
    if (this.conflicts > 0) {
      this.conflicts--;
      throw this.#conflict();
    }
    if (expectedVersion !== undefined && expectedVersion !== this.#set.metadata.resourceVersion) {
      throw this.#conflict();
    }
    const before = JSON.stringify(this.#set.spec);
    apply();
    if (JSON.stringify(this.#set.spec) !== before) this.#set.metadata.generation++;
    this.#set.metadata.resourceVersion = String(++this.#resourceVersion);
    this.writes++;
    this.reconcilePods();
  }

  #conflict(): HttpProblem {
    return new HttpProblem(
      409,
      "Conflict",
      `Operation cannot be fulfilled on statefulsets.apps "${this.name}": the object has been modified; ` +
        "please apply your changes to the latest version and try again",
    );
  }

  #setReplicas(replicas: unknown): void {
    if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0) {
      throw new HttpProblem(422, "Invalid", `spec.replicas: Invalid value: ${JSON.stringify(replicas)}`);
    }
    this.#set.spec.replicas = replicas;
  }

  /** What the StatefulSet controller does: make missing pods, delete surplus ones. */
  reconcilePods(): void {
    if (this.#closed) return;
    for (let ordinal = 0; ordinal < this.#set.spec.replicas; ordinal++) {
      const name = `${this.name}-${ordinal}`;
      // a pod still terminating keeps its name: the new one waits for it, as in Kubernetes
      if (!this.#pods.has(name)) this.#startPod(name, ordinal);
    }
    for (const [name, pod] of this.#pods) {
      if (ordinalOf(name) >= this.#set.spec.replicas && pod.metadata.deletionTimestamp === undefined) {
        this.#stopPod(pod);
      }
    }
  }

  #startPod(name: string, ordinal: number): void {
    const pod: FakePod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name,
        namespace: this.namespace,
        labels: {
          ...this.#set.spec.template.metadata.labels,
          "statefulset.kubernetes.io/pod-name": name,
          "apps.kubernetes.io/pod-index": String(ordinal),
        },
        creationTimestamp: new Date().toISOString(),
      },
      status: { phase: "Pending", conditions: [{ type: "Ready", status: "False" }] },
    };
    this.#pods.set(name, pod);
    this.#after(this.#podStartMs, () => {
      if (this.#pods.get(name) !== pod || pod.metadata.deletionTimestamp !== undefined) return;
      pod.status = { phase: "Running", conditions: [{ type: "Ready", status: "True" }] };
    });
  }

  #stopPod(pod: FakePod): void {
    pod.metadata.deletionTimestamp = new Date().toISOString();
    this.#after(this.#podStopMs, () => {
      if (this.#pods.get(pod.metadata.name) !== pod) return;
      this.#pods.delete(pod.metadata.name);
      this.reconcilePods();
    });
  }

  #after(ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      run();
    }, ms);
    this.#timers.add(timer);
  }
}

export async function startFakeKubernetes(options: FakeKubernetesOptions = {}): Promise<FakeKubernetes> {
  const cluster = new FakeCluster(options);
  let failures: { count: number; status: number } = { count: 0, status: 503 };

  const server = createServer((request, response) => {
    void (async () => {
      try {
        if (options.token !== undefined && request.headers.authorization !== `Bearer ${options.token}`) {
          throw new HttpProblem(401, "Unauthorized", "Unauthorized");
        }
        if (failures.count > 0) {
          failures.count--;
          throw new HttpProblem(failures.status, "InternalError", "the fake was told to fail this request");
        }
        send(response, 200, await route(cluster, request));
      } catch (error) {
        if (!(error instanceof HttpProblem)) throw error;
        send(response, error.status, {
          apiVersion: "v1",
          kind: "Status",
          metadata: {},
          status: "Failure",
          message: error.message,
          reason: error.reason,
          code: error.status,
        });
      }
    })().catch((error: unknown) => {
      response.destroy(error instanceof Error ? error : new Error(String(error)));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    namespace: cluster.namespace,
    name: cluster.name,
    get writes() {
      return cluster.writes;
    },
    statefulSet: () => cluster.statefulSet(),
    pods: () => cluster.pods(),
    conflictNext: (count) => cluster.conflictNext(count),
    failNext: (count, status = 503) => {
      failures = { count, status };
    },
    close: async () => {
      cluster.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function route(cluster: FakeCluster, request: IncomingMessage): Promise<unknown> {
  const url = new URL(request.url ?? "/", "http://fake");
  const method = request.method ?? "GET";
  const ns = encodeURIComponent(cluster.namespace);
  const setPath = `/apis/apps/v1/namespaces/${ns}/statefulsets/${encodeURIComponent(cluster.name)}`;
  const podsPath = `/api/v1/namespaces/${ns}/pods`;

  if (url.pathname === setPath) {
    if (method === "GET") return cluster.statefulSet();
    if (method === "PATCH") return cluster.patchStatefulSet(await mergePatchBody(request));
  } else if (url.pathname === `${setPath}/scale`) {
    if (method === "GET") return cluster.scale();
    if (method === "PUT") return cluster.writeScale(await jsonBody(request), false);
    if (method === "PATCH") return cluster.writeScale(await mergePatchBody(request), true);
  } else if (url.pathname === podsPath) {
    if (method === "GET") {
      const matches = labelMatcher(url.searchParams.get("labelSelector") ?? "");
      return { apiVersion: "v1", kind: "PodList", metadata: {}, items: cluster.pods().filter(matches) };
    }
  } else if (url.pathname.startsWith(`${podsPath}/`)) {
    const name = decodeURIComponent(url.pathname.slice(podsPath.length + 1));
    if (method === "GET") {
      const pod = cluster.pod(name);
      if (!pod) throw new HttpProblem(404, "NotFound", `pods "${name}" not found`);
      return pod;
    }
  } else {
    const otherSet = /^\/apis\/apps\/v1\/namespaces\/[^/]+\/statefulsets\/([^/]+)$/.exec(url.pathname);
    const what = otherSet ? `statefulsets.apps "${decodeURIComponent(otherSet[1]!)}"` : url.pathname;
    throw new HttpProblem(404, "NotFound", `${what} not found`);
  }
  throw new HttpProblem(405, "MethodNotAllowed", `${method} is not supported on ${url.pathname}`);
}

async function mergePatchBody(request: IncomingMessage): Promise<unknown> {
  const type = request.headers["content-type"] ?? "";
  if (!type.startsWith("application/merge-patch+json")) {
    throw new HttpProblem(415, "UnsupportedMediaType", `the fake accepts only merge patches, not '${type}'`);
  }
  return jsonBody(request);
}

async function jsonBody(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new HttpProblem(400, "BadRequest", "the body is not JSON");
  }
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  response.end(text);
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const result: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

function stringRecord(value: unknown, field: string): Record<string, string> {
  if (value === undefined) return {};
  if (!isObject(value) || Object.values(value).some((v) => typeof v !== "string")) {
    throw new HttpProblem(422, "Invalid", `${field}: must be a map of strings`);
  }
  return value as Record<string, string>;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const ordinalOf = (podName: string): number => Number(podName.slice(podName.lastIndexOf("-") + 1));

const selectorString = (labels: Record<string, string>): string =>
  Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(",");

/**
 * A label selector's test: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`,
 * `k` and `!k`, comma separated (commas inside parentheses belong to the set).
 */
function labelMatcher(selector: string): (pod: FakePod) => boolean {
  const terms = selector.split(/,(?![^(]*\))/).map((term) => term.trim());
  const tests = terms.filter(Boolean).map((term): ((labels: Record<string, string>) => boolean) => {
    const set = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
    if (set) {
      const [, key = "", operator, list = ""] = set;
      const values = list.split(",").map((v) => v.trim());
      return (labels) => (key in labels && values.includes(labels[key]!)) === (operator === "in");
    }
    const comparison = /^([^!=\s]+)\s*(!=|==|=)\s*(\S*)$/.exec(term);
    if (comparison) {
      const [, key = "", operator, value] = comparison;
      return (labels) => (labels[key] === value) === (operator !== "!=");
    }
    if (/^![^!=\s]+$/.test(term)) return (labels) => !(term.slice(1) in labels);
    if (/^[^!=\s]+$/.test(term)) return (labels) => term in labels;
    throw new HttpProblem(400, "BadRequest", `unable to parse requirement: ${JSON.stringify(term)}`);
  });
  return (pod) => tests.every((test) => test(pod.metadata.labels));
}
