import { Code, type HandlerContext } from "@connectrpc/connect";
import { TaskframeError, TaskframeErrorCode } from "../../core/errors.js";
import type { HubStore } from "../store/hub-store.js";
import type { TaskRecord } from "../store/queries/read.js";
import { notFound, readSchedules } from "../store/queries/schedules.js";
import { AuthDenied } from "./authenticator.js";
import type { DenialLog } from "./denials.js";
import { type Principal, peerKey, principalKey, visibleTenants } from "./principal.js";
import { TENANT_NAME } from "./tokens-file.js";

/**
 * Tenant checks inside the handlers: a caller sees, cancels and schedules
 * only the runs and schedules of its tenants. Lookups filter by tenant in
 * SQL; another tenant's run, task or schedule is reported NotFound, exactly
 * as one that does not exist (and the attempt is audited).
 */
export class TenantAccess {
  readonly #store: HubStore;
  readonly #denials: DenialLog | undefined;

  constructor(store: HubStore, denials?: DenialLog) {
    this.#store = store;
    this.#denials = denials;
  }

  /** The caller's tenants; undefined: every tenant (admins, `*` tokens, protected mode, embedded). */
  tenants(context: HandlerContext): readonly string[] | undefined {
    return visibleTenants(context.values.get(principalKey));
  }

  /** The tenant of a new run or schedule: the one asked for, else the caller's only one, else 'default'. */
  tenantFor(context: HandlerContext, requested: string): string {
    const principal = context.values.get(principalKey);
    const tenants = visibleTenants(principal);
    const tenant = requested || (tenants?.length === 1 ? tenants[0]! : "default");
    if (!TENANT_NAME.test(tenant)) {
      throw new TaskframeError(
        TaskframeErrorCode.InvalidArgument,
        `tenant '${tenant}': expected 1-64 letters, digits, '_' or '-'`,
      );
    }
    if (tenants && !tenants.includes(tenant)) {
      throw this.#deny(
        context,
        new AuthDenied(
          Code.PermissionDenied,
          `tenant ${tenant} is not one of the caller's (${tenants.join(", ")})`,
          nameOf(principal),
        ),
      );
    }
    return tenant;
  }

  /** A run id the caller may see (resolveRunId, within its tenants). */
  async runId(context: HandlerContext, idOrPrefix: string): Promise<string> {
    const tenants = this.tenants(context);
    try {
      return await this.#store.resolveRunId(idOrPrefix, tenants);
    } catch (error) {
      if (tenants && isNotFound(error) && idOrPrefix) {
        const elsewhere = await this.#store.resolveRunId(idOrPrefix).catch(() => undefined);
        if (elsewhere) this.#audit(context, `run ${elsewhere} belongs to another tenant`);
      }
      throw error;
    }
  }

  /** A task the caller may see (findTask, within its tenants). */
  async task(
    context: HandlerContext,
    ref: { taskId?: string; runId?: string; name?: string },
  ): Promise<TaskRecord> {
    const tenants = this.tenants(context);
    try {
      return await this.#store.findTask(ref, tenants);
    } catch (error) {
      if (tenants && isNotFound(error)) {
        const elsewhere = await this.#store.findTask(ref).catch(() => undefined);
        if (elsewhere) this.#audit(context, `task ${elsewhere.id} belongs to another tenant`);
      }
      throw error;
    }
  }

  /** Throws NotFound unless the schedule is the caller's. */
  async schedule(context: HandlerContext, name: string): Promise<void> {
    const tenants = this.tenants(context);
    if (!tenants) return;
    const [row] = await readSchedules(this.#store.database, [name]);
    if (row && tenants.includes(row.tenant)) return;
    if (row) this.#audit(context, `schedule ${name} belongs to another tenant`);
    throw notFound(name);
  }

  #audit(context: HandlerContext, reason: string): void {
    this.#deny(context, new AuthDenied(Code.NotFound, reason, nameOf(context.values.get(principalKey))));
  }

  #deny(context: HandlerContext, denial: AuthDenied): AuthDenied {
    this.#denials?.refused(denial, `HubService/${context.method.name}`, context.values.get(peerKey));
    return denial;
  }
}

const nameOf = (principal: Principal | undefined) => principal?.name ?? "";

const isNotFound = (error: unknown) =>
  error instanceof TaskframeError && error.code === TaskframeErrorCode.NotFound;
