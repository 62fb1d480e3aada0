/**
 * A datacenter (or a cluster, or this machine) that makes and removes
 * sidecar hosts. The autoscaler decides how many hosts each pool needs; a
 * provider only carries that out. Every call may be retried: `create` with
 * the same token never makes a second host.
 */
export interface HostProvider {
  /** "local", "http" or "kubernetes": shown in `task hosts` and the audit trail. */
  readonly kind: string;
  /**
   * Asks for one host. `token` is the idempotency token: a retry of a create
   * that timed out (but happened) returns the host the first call made.
   */
  create(request: CreateHostRequest, signal?: AbortSignal): Promise<ProvidedHost>;
  get(id: string, signal?: AbortSignal): Promise<ProvidedHost | undefined>;
  /** The hosts of a pool (every host this provider made for the pool, whatever their state). */
  list(pool: string, signal?: AbortSignal): Promise<ProvidedHost[]>;
  /** Removes a host; removing one that is gone is not an error. */
  delete(id: string, signal?: AbortSignal): Promise<void>;
  /** Ends what the provider holds (processes of the local provider, sockets). */
  close(): Promise<void>;
}

export interface CreateHostRequest {
  pool: string;
  /** The provider's size class (e.g. "small", "c2-standard-4"); empty means its default. */
  size: string;
  labels: Record<string, string>;
  token: string;
}

export type ProvidedHostState = "provisioning" | "running" | "failed" | "terminating";

export interface ProvidedHost {
  /** The provider's id of the host; the sidecar on it reports it as its provider id. */
  id: string;
  pool: string;
  state: ProvidedHostState;
  labels: Record<string, string>;
  token: string;
  createdAtMs: number;
  /** Why it failed, when it did. */
  detail?: string;
}

/**
 * A provider call that may succeed if tried again (a timeout, a 5xx, a
 * refused connection), as opposed to a request the provider refuses.
 */
export class ProviderUnavailableError extends Error {
  override readonly name = "ProviderUnavailableError";
}

export { PROVIDER_HOST_ID_ENV } from "../../core/host-channel.js";
