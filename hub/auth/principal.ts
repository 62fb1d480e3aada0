import { createContextKey } from "@connectrpc/connect";
import type { TaskAttemptRef } from "../../core/task-token.js";

/** What a token may do; each HubService RPC needs one (rpc-permissions.ts). */
export const Permission = {
  Read: "read",
  Submit: "submit",
  Cancel: "cancel",
  Schedule: "schedule",
  /** What a sidecar asks about the work it runs: task states, payloads, children. */
  Worker: "worker",
  /** What a running task asks for its own attempt: spawn children, commit a MapReduce job. */
  Task: "task",
  Admin: "admin",
} as const;
export type Permission = (typeof Permission)[keyof typeof Permission];

export const ROLES = ["admin", "submitter", "reader", "sidecar"] as const;
export type Role = (typeof ROLES)[number];

/** Roles and what they may do; admin may do everything. */
export const ROLE_PERMISSIONS: Record<Role, readonly Permission[]> = {
  admin: Object.values(Permission),
  submitter: [Permission.Read, Permission.Submit, Permission.Cancel, Permission.Schedule],
  reader: [Permission.Read],
  sidecar: [Permission.Worker, Permission.Task],
};

/** `*`: every tenant. */
export type Tenants = readonly string[] | "*";

/**
 * Who is calling:
 * - `user`: a token of the tokens file or a JWT, with a role and tenants;
 * - `task`: a running task's own token (TASKFRAME_TASK_TOKEN), good for its attempt only;
 * - `local`: a loopback caller of a hub without auth (protected mode), who may do everything.
 */
export type Principal =
  | { kind: "user"; name: string; role: Role; tenants: Tenants; via: "token" | "jwt" }
  | ({ kind: "task"; name: string } & TaskAttemptRef)
  | { kind: "local"; name: "local" };

export function mayDo(principal: Principal, permission: Permission): boolean {
  switch (principal.kind) {
    case "local":
      return true;
    case "task":
      return permission === Permission.Task;
    case "user":
      return ROLE_PERMISSIONS[principal.role].includes(permission);
  }
}

/** The tenants whose runs and schedules the principal may see; undefined: all of them. */
export function visibleTenants(principal: Principal | undefined): readonly string[] | undefined {
  if (principal?.kind !== "user" || principal.tenants === "*") return undefined;
  return principal.tenants;
}

/** Set by the auth interceptor on every call it lets through; handlers read it with `context.values`. */
export const principalKey = createContextKey<Principal | undefined>(undefined, {
  description: "the authenticated caller",
});

/** The peer's address, set from the Node request (connectNodeAdapter's contextValues); '' for a unix socket. */
export const peerKey = createContextKey<string>("", { description: "the caller's address" });
