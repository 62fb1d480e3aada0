import { z } from "zod";
import { formatDuration } from "../../core/definitions/duration.js";
import { errorMessage } from "../../core/errors.js";
import {
  type CreateHostRequest,
  type HostProvider,
  type ProvidedHost,
  ProviderUnavailableError,
} from "./provider.js";

// The wire format of docs/provisioning-api.yaml, shared with the fake datacenter that serves it.
// Unknown fields are dropped, not refused: servers may add fields.

export const apiHostStateSchema = z.enum(["provisioning", "running", "failed", "terminating"]);

export const apiHostSchema = z.object({
  id: z.string().min(1),
  pool: z.string(),
  size: z.string(),
  labels: z.record(z.string(), z.string()),
  idempotency_token: z.string(),
  state: apiHostStateSchema,
  created_at: z.iso.datetime({ offset: true }),
  detail: z.string().nullish(),
});
export type ApiHost = z.infer<typeof apiHostSchema>;

export const apiHostListSchema = z.object({ hosts: z.array(apiHostSchema) });

export const apiErrorSchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
export type ApiError = z.infer<typeof apiErrorSchema>;

export interface HttpHostProviderOptions {
  /** Base URL of the API; the endpoints are under `${url}/v1`. */
  url: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Per call, including reading the response (default 10 s). */
  timeoutMs?: number;
}

interface ApiResponse {
  status: number;
  text: string;
  /** The Location header of a redirect. */
  location: string | null;
}

/**
 * A HostProvider that calls a datacenter's host-provisioning API
 * (docs/provisioning-api.yaml). It never retries: a timeout, a network error,
 * a 429, a 5xx or a malformed answer throw ProviderUnavailableError, and the
 * autoscaler tries again later (with the same token for a create); any other
 * 4xx throws an Error saying what the API refused and why.
 */
export class HttpHostProvider implements HostProvider {
  readonly kind = "http";
  readonly #baseUrl: string;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;

  constructor(options: HttpHostProviderOptions) {
    const url = URL.canParse(options.url) ? new URL(options.url) : undefined;
    if (url?.protocol !== "http:" && url?.protocol !== "https:") {
      throw new Error(
        `http provider: expected an http:// or https:// URL, got ${JSON.stringify(options.url)}`,
      );
    }
    this.#baseUrl = url.href.replace(/\/+$/, "");
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  async create(request: CreateHostRequest, signal?: AbortSignal): Promise<ProvidedHost> {
    const what = "POST /v1/hosts";
    const response = await this.#send("POST", "/v1/hosts", signal, {
      body: {
        pool: request.pool,
        size: request.size,
        labels: request.labels,
        idempotency_token: request.token,
      },
      headers: { "idempotency-key": request.token },
    });
    // 201: made by this call; 200: the token's host from an earlier call
    if (response.status !== 200 && response.status !== 201) throw this.#failure(what, response);
    return providedHost(this.#parse(what, response, apiHostSchema, "host"));
  }

  async get(id: string, signal?: AbortSignal): Promise<ProvidedHost | undefined> {
    const path = `/v1/hosts/${encodeURIComponent(id)}`;
    const what = `GET ${path}`;
    const response = await this.#send("GET", path, signal);
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw this.#failure(what, response);
    return providedHost(this.#parse(what, response, apiHostSchema, "host"));
  }

  async list(pool: string, signal?: AbortSignal): Promise<ProvidedHost[]> {
    const path = `/v1/hosts?${new URLSearchParams({ pool })}`;
    const what = `GET ${path}`;
    const response = await this.#send("GET", path, signal);
    if (response.status !== 200) throw this.#failure(what, response);
    return this.#parse(what, response, apiHostListSchema, "host list").hosts.map(providedHost);
  }

  async delete(id: string, signal?: AbortSignal): Promise<void> {
    const path = `/v1/hosts/${encodeURIComponent(id)}`;
    const response = await this.#send("DELETE", path, signal);
    // 404: already gone, which is what was asked
    if (response.status === 404 || (response.status >= 200 && response.status < 300)) return;
    throw this.#failure(`DELETE ${path}`, response);
  }

  async close(): Promise<void> {
    // nothing held between calls: fetch's connection pool is the process's
  }

  /** One HTTP exchange, response body read in full, under the timeout and the caller's signal. */
  async #send(
    method: string,
    path: string,
    signal: AbortSignal | undefined,
    options: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<ApiResponse> {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.#timeoutMs);
    const headers: Record<string, string> = { accept: "application/json", ...options.headers };
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    try {
      const response = await fetch(`${this.#baseUrl}${path}`, {
        method,
        headers,
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        signal: signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal,
        // followed, a redirect would turn a POST into a GET
        redirect: "manual",
      });
      return {
        status: response.status,
        text: await response.text(),
        location: response.headers.get("location"),
      };
    } catch (error) {
      // the caller's cancellation is not the provider's fault: pass it on as it is
      if (signal?.aborted) throw signal.reason;
      if (timeout.signal.aborted) {
        throw new ProviderUnavailableError(
          `${this.#describe(`${method} ${path}`)} got no answer within ${formatDuration(this.#timeoutMs)}`,
        );
      }
      throw new ProviderUnavailableError(
        `${this.#describe(`${method} ${path}`)} failed: ${networkProblem(error)}`,
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
    }
  }

  #parse<T>(what: string, response: ApiResponse, schema: z.ZodType<T>, expected: string): T {
    let json: unknown;
    try {
      json = JSON.parse(response.text);
    } catch {
      throw new ProviderUnavailableError(
        `${this.#describe(what)} answered ${response.status} with a body that is not JSON: ${excerpt(response.text)}`,
      );
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new ProviderUnavailableError(
        `${this.#describe(what)} answered ${response.status} with a malformed ${expected}: ${issues(parsed.error)}`,
      );
    }
    return parsed.data;
  }

  #failure(what: string, response: ApiResponse): Error {
    const { status } = response;
    if (status >= 300 && status < 400) {
      return new Error(
        `${this.#describe(what)} was redirected (${status}) to ${response.location ?? "(no location)"}: ` +
          "set the provider's url to the API itself",
      );
    }
    const reason = apiErrorReason(response.text);
    if (status >= 400 && status < 500 && status !== 429) {
      return new Error(`${this.#describe(what)} was refused with ${status}: ${reason}`);
    }
    const kind = status >= 500 ? "failed" : status === 429 ? "is rate limited" : "gave an unexpected answer";
    return new ProviderUnavailableError(`${this.#describe(what)} ${kind} (${status}): ${reason}`);
  }

  #describe(what: string): string {
    return `http provider ${this.#baseUrl}: ${what}`;
  }
}

function providedHost(host: ApiHost): ProvidedHost {
  return {
    id: host.id,
    pool: host.pool,
    state: host.state,
    labels: host.labels,
    token: host.idempotency_token,
    createdAtMs: Date.parse(host.created_at),
    ...(host.detail ? { detail: host.detail } : {}),
  };
}

/** The API's `code: message` when the body is its error shape, else an excerpt of the body. */
function apiErrorReason(text: string): string {
  try {
    const parsed = apiErrorSchema.safeParse(JSON.parse(text));
    if (parsed.success) return `${parsed.data.error.code}: ${parsed.data.error.message}`;
  } catch {
    // not JSON: fall through to the raw text
  }
  return text.trim() === "" ? "(empty body)" : excerpt(text);
}

/** fetch's "fetch failed" says nothing; the cause (ECONNREFUSED, ENOTFOUND, ...) does. */
function networkProblem(error: unknown): string {
  const cause = error instanceof Error ? error.cause : undefined;
  return cause === undefined ? errorMessage(error) : `${errorMessage(error)} (${errorMessage(cause)})`;
}

function issues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join(".") : "(body)"}: ${issue.message}`)
    .join("; ");
}

function excerpt(text: string): string {
  const oneLine = text.replace(/\s+/g, " ").trim();
  return JSON.stringify(oneLine.length > 200 ? `${oneLine.slice(0, 200)}…` : oneLine);
}
