import { Code, type Interceptor } from "@connectrpc/connect";
import { AuthDenied, type Authenticator } from "./authenticator.js";
import type { DenialLog } from "./denials.js";
import { mayDo, peerKey, principalKey } from "./principal.js";
import { permissionOf } from "./rpc-permissions.js";
import { checkTaskScope } from "./task-scope.js";

/**
 * Every call to the API passes here first: who is calling (Unauthenticated
 * if nobody we know), and whether the RPC's permission (rpc-permissions.ts)
 * is theirs (PermissionDenied; an RPC missing from the table is refused to
 * all). Refusals are audited. The principal travels to the handler in the
 * context values, where tenant checks happen (access.ts).
 */
export function authInterceptor(auth: Authenticator, denials: DenialLog): Interceptor {
  return (next) => async (request) => {
    const method = request.method.name;
    const peer = request.contextValues.get(peerKey);
    try {
      const principal = await auth.authenticate(request.header.get("authorization"), peer);
      const permission = permissionOf(method);
      if (!permission) {
        throw new AuthDenied(Code.PermissionDenied, `${method} is open to no caller`, principal.name);
      }
      if (!mayDo(principal, permission)) {
        const who = principal.kind === "user" ? `role ${principal.role}` : `a ${principal.kind} token`;
        throw new AuthDenied(
          Code.PermissionDenied,
          `${who} may not call ${method} (it needs the ${permission} permission)`,
          principal.name,
        );
      }
      if (principal.kind === "task") {
        if (request.stream)
          throw new AuthDenied(Code.PermissionDenied, `a task token may not call ${method}`);
        checkTaskScope(principal, method, request.message);
      }
      request.contextValues.set(principalKey, principal);
    } catch (error) {
      if (error instanceof AuthDenied) denials.refused(error, `HubService/${method}`, peer);
      throw error;
    }
    return next(request);
  };
}
