import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { HubService } from "../../core/gen/taskframe/v1/hub_pb.js";

/** The hub that serves this page, spoken to with the same RPCs as the `task` CLI. */
export const hub = createClient(
  HubService,
  createConnectTransport({
    baseUrl: new URL(".", window.location.href).href.replace(/\/$/, ""),
    useBinaryFormat: true,
  }),
);

export const millis = (value: bigint): number => Number(value);
