import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { HubService } from "../../core/gen/taskframe/v1/hub_pb.js";

/** Where the API token typed into the prompt is kept: this tab only, gone when it closes. */
const TOKEN_KEY = "taskframe-token";
/** Dispatched on window when the hub refuses the call's credentials (TokenPrompt listens). */
export const UNAUTHENTICATED_EVENT = "taskframe:unauthenticated";

export const storedToken = (): string => sessionStorage.getItem(TOKEN_KEY) ?? "";

export function storeToken(token: string): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Sends the stored token as a bearer token; asks for one when the hub says Unauthenticated. */
const withToken: Interceptor = (next) => async (request) => {
  const token = storedToken();
  if (token) request.header.set("authorization", `Bearer ${token}`);
  try {
    return await next(request);
  } catch (error) {
    const refused = ConnectError.from(error);
    if (refused.code === Code.Unauthenticated) {
      window.dispatchEvent(new CustomEvent(UNAUTHENTICATED_EVENT, { detail: refused.rawMessage }));
    }
    throw error;
  }
};

/** The hub that serves this page, spoken to with the same RPCs as the `task` CLI. */
export const hub = createClient(
  HubService,
  createConnectTransport({
    baseUrl: new URL(".", window.location.href).href.replace(/\/$/, ""),
    useBinaryFormat: true,
    interceptors: [withToken],
  }),
);

export const millis = (value: bigint): number => Number(value);
