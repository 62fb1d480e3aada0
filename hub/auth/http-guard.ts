import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { Code } from "@connectrpc/connect";
import { AuthDenied, type Authenticator } from "./authenticator.js";
import type { DenialLog } from "./denials.js";
import { mayDo, type Permission } from "./principal.js";

/** The peer of a Node request: its address, '' for a unix socket. */
export const peerOf = (request: IncomingMessage | Http2ServerRequest): string =>
  request.socket?.remoteAddress ?? "";

/**
 * The API's checks for a plain HTTP path (`/metrics`): undefined when the
 * caller may have it, else the status and message to answer (401 or 403),
 * audited like a refused RPC.
 */
export async function guardHttp(
  auth: Authenticator,
  denials: DenialLog,
  request: IncomingMessage | Http2ServerRequest,
  path: string,
  permission: Permission,
): Promise<{ status: number; message: string } | undefined> {
  const peer = peerOf(request);
  try {
    const principal = await auth.authenticate(request.headers.authorization, peer);
    if (!mayDo(principal, permission)) {
      throw new AuthDenied(
        Code.PermissionDenied,
        `${path} needs the ${permission} permission`,
        principal.name,
      );
    }
    return undefined;
  } catch (error) {
    if (!(error instanceof AuthDenied)) throw error;
    denials.refused(error, path, peer);
    return { status: error.code === Code.Unauthenticated ? 401 : 403, message: error.rawMessage };
  }
}
