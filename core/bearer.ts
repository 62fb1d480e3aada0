import type { Interceptor } from "@connectrpc/connect";

/** A client interceptor that sends `Authorization: Bearer <token>` with every call. */
export function bearer(token: string): Interceptor {
  return (next) => (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
}
