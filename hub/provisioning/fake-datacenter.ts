import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { setTimeout as delay } from "node:timers/promises";
import { z } from "zod";
import { errorMessage } from "../../core/errors.js";
import type { ApiError, ApiHost } from "./http-provider.js";

/**
 * An in-memory datacenter serving docs/provisioning-api.yaml over HTTP, for
 * demos and tests, with faults to inject and a hook to start a real sidecar
 * for each host that comes up.
 */
export interface FakeDatacenter {
  /** `http://HOST:PORT`, with the port actually bound. */
  readonly url: string;
  /** Change at any time; each fault applies to the requests (or hosts) that come after. */
  readonly faults: FakeDatacenterFaults;
  /** Requests per operation, counted whatever they were answered. */
  readonly calls: Record<FakeDatacenterOperation, number>;
  /** Hosts ever made. */
  readonly created: number;
  /** The current hosts (copies), in the order they were made. */
  hosts(): ApiHost[];
  /**
   * The host vanishes without notice, as a lost machine does: removed from the
   * list, its launched handle stopped. False when there is no such host.
   */
  kill(id: string): Promise<boolean>;
  /** Stops everything: boot timers, hanging answers, launched hosts, the server and its sockets. */
  close(): Promise<void>;
}

export interface FakeDatacenterOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port (see `url`). */
  port?: number;
  /** How long a new host is `provisioning` before it is `running` (default 0). */
  bootMs?: number;
  /** Require `Authorization: Bearer <token>` (401 otherwise). */
  token?: string;
  /**
   * Called when a host becomes `running` (e.g. to start a `task sidecar` for
   * it); the handle's `stop` is called when the host is deleted or killed. A
   * launch that fails turns the host `failed`.
   */
  launch?: (host: ApiHost) => Promise<LaunchedHost> | undefined;
}

export interface LaunchedHost {
  stop(): Promise<void>;
}

export interface FakeDatacenterFaults {
  /** The next N creates answer 500 without making a host. */
  createFailures: number;
  /** The next create that makes a host answers this much later (a client that times out first retries). */
  createHangAfterCreateMs: number;
  /** Hosts made while set reach `running` but are not launched: a host whose sidecar never registers. */
  neverLaunch: boolean;
  /** Hosts made while set end `failed` instead of `running`. */
  failBoot: boolean;
}

export type FakeDatacenterOperation = "create" | "get" | "list" | "delete";

export async function startFakeDatacenter(options: FakeDatacenterOptions = {}): Promise<FakeDatacenter> {
  const faults: FakeDatacenterFaults = {
    createFailures: 0,
    createHangAfterCreateMs: 0,
    neverLaunch: false,
    failBoot: false,
  };
  const calls: Record<FakeDatacenterOperation, number> = { create: 0, get: 0, list: 0, delete: 0 };
  const fleet = new HostFleet(options.bootMs ?? 0, options.launch);
  const closing = new AbortController();
  const api = new FakeApi({ fleet, faults, calls, token: options.token, closing: closing.signal });

  const server = createServer((request, response) => void api.handle(request, response));
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address();
  const port = typeof bound === "object" && bound ? bound.port : (options.port ?? 0);
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

  let closed: Promise<void> | undefined;
  return {
    url,
    faults,
    calls,
    get created() {
      return fleet.created;
    },
    hosts: () => fleet.list(undefined),
    kill: (id) => fleet.kill(id),
    close() {
      closed ??= (async () => {
        closing.abort();
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        try {
          await fleet.close();
        } finally {
          await serverClosed;
        }
      })();
      return closed;
    },
  };
}

interface HostRequest {
  pool: string;
  size: string;
  labels: Record<string, string>;
  token: string;
}

interface FleetEntry {
  host: ApiHost;
  failBoot: boolean;
  neverLaunch: boolean;
  bootTimer?: NodeJS.Timeout;
  launched?: Promise<LaunchedHost | undefined>;
}

type CreateOutcome = { host: ApiHost; made: boolean } | { conflict: string };

/** The datacenter itself: hosts, their lifecycle and the idempotency tokens, without HTTP. */
class HostFleet {
  created = 0;
  readonly #entries = new Map<string, FleetEntry>();
  /** Every token ever used, kept after its host is gone: a token never makes two hosts. */
  readonly #tokens = new Map<string, { id: string; request: HostRequest }>();
  readonly #terminations = new Set<Promise<void>>();
  readonly #stopErrors: unknown[] = [];
  #closed = false;

  constructor(
    private readonly bootMs: number,
    private readonly launch: FakeDatacenterOptions["launch"],
  ) {}

  create(request: HostRequest, faults: FakeDatacenterFaults): CreateOutcome {
    const used = this.#tokens.get(request.token);
    if (used) {
      const entry = this.#entries.get(used.id);
      if (!sameRequest(used.request, request)) {
        return {
          conflict:
            `idempotency token ${JSON.stringify(request.token)} was already used for another request ` +
            `(pool ${JSON.stringify(used.request.pool)}, size ${JSON.stringify(used.request.size)}, ` +
            `labels ${JSON.stringify(used.request.labels)}): use a new token`,
        };
      }
      if (!entry) {
        return {
          conflict: `idempotency token ${JSON.stringify(request.token)} made host ${used.id}, which is gone: use a new token`,
        };
      }
      return { host: snapshot(entry.host), made: false };
    }

    const host: ApiHost = {
      id: `h-${randomBytes(6).toString("hex")}`,
      pool: request.pool,
      size: request.size,
      labels: { ...request.labels },
      idempotency_token: request.token,
      state: "provisioning",
      created_at: new Date().toISOString(),
    };
    const entry: FleetEntry = { host, failBoot: faults.failBoot, neverLaunch: faults.neverLaunch };
    entry.bootTimer = setTimeout(() => this.#boot(entry), this.bootMs);
    this.#entries.set(host.id, entry);
    this.#tokens.set(request.token, { id: host.id, request: { ...request, labels: { ...request.labels } } });
    this.created++;
    return { host: snapshot(host), made: true };
  }

  get(id: string): ApiHost | undefined {
    const entry = this.#entries.get(id);
    return entry && snapshot(entry.host);
  }

  list(pool: string | undefined): ApiHost[] {
    return [...this.#entries.values()]
      .filter((entry) => pool === undefined || entry.host.pool === pool)
      .map((entry) => snapshot(entry.host));
  }

  /** Starts removing a host: `terminating` until its launched handle stopped, then gone. */
  delete(id: string): boolean {
    const entry = this.#entries.get(id);
    if (!entry) return false;
    if (entry.host.state === "terminating") return true;
    entry.host.state = "terminating";
    clearTimeout(entry.bootTimer);
    const termination = this.#stopLaunched(entry)
      .catch((error: unknown) => {
        // the host goes either way; close() reports what failed to stop
        this.#stopErrors.push(error);
      })
      .finally(() => {
        if (this.#entries.get(id) === entry) this.#entries.delete(id);
        this.#terminations.delete(termination);
      });
    this.#terminations.add(termination);
    return true;
  }

  async kill(id: string): Promise<boolean> {
    const entry = this.#entries.get(id);
    if (!entry) return false;
    this.#entries.delete(id);
    clearTimeout(entry.bootTimer);
    await this.#stopLaunched(entry);
    return true;
  }

  /** Stops every launched host; throws an AggregateError of the stops that failed, here or in deletes. */
  async close(): Promise<void> {
    this.#closed = true;
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    for (const entry of entries) clearTimeout(entry.bootTimer);
    const stops = await Promise.allSettled(entries.map((entry) => this.#stopLaunched(entry)));
    await Promise.all(this.#terminations);
    const errors = [
      ...this.#stopErrors,
      ...stops.flatMap((stop) => (stop.status === "rejected" ? [stop.reason] : [])),
    ];
    if (errors.length > 0)
      throw new AggregateError(errors, "fake datacenter: stopping launched hosts failed");
  }

  #boot(entry: FleetEntry): void {
    entry.bootTimer = undefined;
    if (this.#closed || entry.host.state !== "provisioning") return;
    if (entry.failBoot) {
      entry.host.state = "failed";
      entry.host.detail = "the host did not boot (fault failBoot)";
      return;
    }
    entry.host.state = "running";
    if (this.launch && !entry.neverLaunch) entry.launched = this.#launch(entry, this.launch);
  }

  #launch(entry: FleetEntry, launch: NonNullable<FakeDatacenterOptions["launch"]>) {
    let launching: Promise<LaunchedHost> | undefined;
    try {
      launching = launch(snapshot(entry.host));
    } catch (error) {
      launching = Promise.reject(error);
    }
    return Promise.resolve(launching).catch((error: unknown) => {
      if (entry.host.state === "running") {
        entry.host.state = "failed";
        entry.host.detail = `launch failed: ${errorMessage(error)}`;
      }
      return undefined;
    });
  }

  async #stopLaunched(entry: FleetEntry): Promise<void> {
    const launched = entry.launched;
    entry.launched = undefined;
    const handle = await launched;
    await handle?.stop();
  }
}

const sameRequest = (a: HostRequest, b: HostRequest): boolean =>
  a.pool === b.pool && a.size === b.size && sortedJson(a.labels) === sortedJson(b.labels);

const sortedJson = (labels: Record<string, string>): string =>
  JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

const snapshot = (host: ApiHost): ApiHost => ({ ...host, labels: { ...host.labels } });

const createHostBodySchema = z.strictObject({
  pool: z.string().min(1, "expected a non-empty pool name"),
  size: z.string().default(""),
  labels: z.record(z.string(), z.string()).default({}),
  idempotency_token: z.string().min(1).max(200).optional(),
});

const MAX_BODY_BYTES = 1 << 20;

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The HTTP side: routes, bearer auth, request validation and the injected faults. */
class FakeApi {
  constructor(
    private readonly state: {
      fleet: HostFleet;
      faults: FakeDatacenterFaults;
      calls: Record<FakeDatacenterOperation, number>;
      token: string | undefined;
      closing: AbortSignal;
    },
  ) {}

  async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    try {
      await this.#route(request, response);
    } catch (error) {
      if (error instanceof HttpProblem) sendError(response, error.status, error.code, error.message);
      else sendError(response, 500, "internal", `fake datacenter: ${errorMessage(error)}`);
    }
  }

  async #route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const method = request.method ?? "GET";
    const url = new URL(request.url ?? "/", "http://fake-datacenter");
    if (url.pathname === "/v1/hosts") {
      if (method === "POST") return this.#create(request, response);
      if (method === "GET") return this.#list(request, response, url);
      throw methodNotAllowed(response, method, url.pathname, "GET, POST");
    }
    const hostPath = /^\/v1\/hosts\/([^/]+)$/.exec(url.pathname);
    if (hostPath) {
      const id = decodeId(hostPath[1]!);
      if (method === "GET") return this.#get(request, response, id);
      if (method === "DELETE") return this.#delete(request, response, id);
      throw methodNotAllowed(response, method, url.pathname, "GET, DELETE");
    }
    throw new HttpProblem(
      404,
      "not_found",
      `no endpoint ${method} ${url.pathname}: see docs/provisioning-api.yaml (/v1/hosts, /v1/hosts/{id})`,
    );
  }

  async #create(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const { fleet, faults } = this.#begin("create", request);
    if (faults.createFailures > 0) {
      faults.createFailures--;
      throw new HttpProblem(500, "internal", "injected fault createFailures: no host was made");
    }
    const body = createHostBodySchema.safeParse(await readJson(request));
    if (!body.success) throw new HttpProblem(400, "invalid_request", issues(body.error));
    const token = idempotencyToken(body.data.idempotency_token, request.headers["idempotency-key"]);
    const outcome = fleet.create({ ...body.data, token }, faults);
    if ("conflict" in outcome) throw new HttpProblem(409, "token_used", outcome.conflict);

    if (outcome.made && faults.createHangAfterCreateMs > 0) {
      const hangMs = faults.createHangAfterCreateMs;
      faults.createHangAfterCreateMs = 0;
      try {
        await delay(hangMs, undefined, { signal: this.state.closing });
      } catch {
        return; // closing: the connection is being destroyed
      }
    }
    sendJson(response, outcome.made ? 201 : 200, fleet.get(outcome.host.id) ?? outcome.host);
  }

  async #list(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const { fleet } = this.#begin("list", request);
    sendJson(response, 200, { hosts: fleet.list(url.searchParams.get("pool") ?? undefined) });
  }

  async #get(request: IncomingMessage, response: ServerResponse, id: string): Promise<void> {
    const { fleet } = this.#begin("get", request);
    const host = fleet.get(id);
    if (!host) throw new HttpProblem(404, "not_found", `no host ${JSON.stringify(id)}`);
    sendJson(response, 200, host);
  }

  async #delete(request: IncomingMessage, response: ServerResponse, id: string): Promise<void> {
    const { fleet } = this.#begin("delete", request);
    if (!fleet.delete(id)) throw new HttpProblem(404, "not_found", `no host ${JSON.stringify(id)}`);
    response.writeHead(202, { "content-length": 0 }).end();
  }

  /** Counts the call and checks the bearer token. */
  #begin(operation: FakeDatacenterOperation, request: IncomingMessage) {
    this.state.calls[operation]++;
    const { token } = this.state;
    if (token !== undefined && request.headers.authorization !== `Bearer ${token}`) {
      const problem = request.headers.authorization ? "wrong bearer token" : "missing bearer token";
      throw new HttpProblem(401, "unauthorized", `${problem}: send Authorization: Bearer <token>`);
    }
    return this.state;
  }
}

function methodNotAllowed(
  response: ServerResponse,
  method: string,
  path: string,
  allow: string,
): HttpProblem {
  response.setHeader("allow", allow);
  return new HttpProblem(
    405,
    "method_not_allowed",
    `${method} is not allowed on ${path} (allowed: ${allow})`,
  );
}

function decodeId(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpProblem(
      400,
      "invalid_request",
      `host id ${JSON.stringify(raw)} is not valid percent-encoding`,
    );
  }
}

/** The body's token, the Idempotency-Key header's, or both when they agree. */
function idempotencyToken(fromBody: string | undefined, fromHeader: string | string[] | undefined): string {
  const header = Array.isArray(fromHeader) ? fromHeader[0] : fromHeader;
  if (fromBody !== undefined && header !== undefined && fromBody !== header) {
    throw new HttpProblem(
      400,
      "invalid_request",
      `idempotency_token ${JSON.stringify(fromBody)} and Idempotency-Key ${JSON.stringify(header)} differ`,
    );
  }
  const token = fromBody ?? header;
  if (!token) {
    throw new HttpProblem(
      400,
      "invalid_request",
      "idempotency_token (or the Idempotency-Key header) is required",
    );
  }
  return token;
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpProblem(400, "invalid_request", "the body is larger than 1 MiB");
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpProblem(400, "invalid_json", `the body is not JSON: ${errorMessage(error)}`);
  }
}

function issues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join(".") : "body"}: ${issue.message}`)
    .join("; ");
}

function sendError(response: ServerResponse, status: number, code: string, message: string): void {
  const body: ApiError = { error: { code, message } };
  sendJson(response, status, body, status === 401 ? { "www-authenticate": "Bearer" } : {});
}

function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (response.headersSent || response.destroyed) return;
  const text = JSON.stringify(body);
  response
    .writeHead(status, {
      ...headers,
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
    })
    .end(text);
}
