import { toJson } from "@bufbuild/protobuf";
import {
  GetHostHistoryResponseSchema,
  type ListHostsResponse,
  ListHostsResponseSchema,
  type ProvisionedHost,
} from "../../core/gen/taskframe/v1/hub_pb.js";
import type { HostHeartbeat } from "../../core/gen/taskframe/v1/messages_pb.js";
import { ExitCode } from "../cli-error.js";
import { withHubClient } from "../hub-client.js";
import type { StoreOptions } from "../options.js";
import { formatDuration, timestamp } from "../render/format.js";
import { renderTable } from "../render/table.js";

export interface HostsCommandOptions extends StoreOptions {
  pool?: string;
}

/** Heartbeats older than this read as lost (the autoscaler's default heartbeat timeout). */
const QUIET_AFTER_MS = 10_000;

/**
 * `task hosts`: each sidecar host by pool, with its state, load and age,
 * and the hosts the autoscaler has asked for that have no sidecar yet.
 */
export async function hostsCommand(options: HostsCommandOptions): Promise<number> {
  const listed = await withHubClient(options, (client) => client.listHosts({}));
  if (options.json) {
    process.stdout.write(`${JSON.stringify(toJson(ListHostsResponseSchema, listed), null, 2)}\n`);
    return ExitCode.Ok;
  }
  const rows = hostRows(listed).filter(
    (row) => !options.pool || (row[0] ?? "").split(",").includes(options.pool),
  );
  process.stdout.write(
    rows.length === 0
      ? "no hosts running: start task sidecar, or give the hub an autoscale: block (docs/autoscaling.md)\n"
      : `${renderTable(["POOL", "HOST", "STATE", "LOAD", "AGE", "LAST SEEN", "PROVIDER", "DETAIL"], rows)}\n`,
  );
  return ExitCode.Ok;
}

function hostRows(listed: ListHostsResponse): string[][] {
  const byProviderId = new Map<string, ProvisionedHost>();
  for (const p of listed.provisioned) if (p.providerHostId) byProviderId.set(p.providerHostId, p);
  const rows: string[][] = [];
  const shown = new Set<string>();
  for (const { heartbeat, lastSeenMsAgo } of listed.hosts) {
    if (!heartbeat) continue;
    const host = { ...heartbeat, lastSeenMsAgo };
    const provisioned = byProviderId.get(host.providerHostId);
    if (host.stopped && !provisioned) continue;
    shown.add(host.providerHostId);
    rows.push([
      host.pools.join(","),
      host.host,
      hostState(host, provisioned),
      `${host.running}/${host.slots}`,
      formatDuration(Date.now() - Number(host.startedAtUnixMs)),
      `${formatDuration(Number(host.lastSeenMsAgo))} ago`,
      provisioned ? `${provisioned.provider} ${host.providerHostId}` : "by hand",
      provisioned?.detail ?? "",
    ]);
  }
  for (const p of listed.provisioned) {
    if (p.providerHostId && shown.has(p.providerHostId)) continue;
    rows.push([
      p.pool,
      p.providerHostId || "-",
      p.state,
      "",
      formatDuration(Number(p.ageMs)),
      "never",
      `${p.provider}${p.createAttempts > 1 ? ` (${p.createAttempts} create calls)` : ""}`,
      p.detail,
    ]);
  }
  return rows.sort((a, b) => a[0]!.localeCompare(b[0]!) || a[1]!.localeCompare(b[1]!));
}

function hostState(
  host: HostHeartbeat & { lastSeenMsAgo: bigint },
  provisioned: ProvisionedHost | undefined,
): string {
  if (host.stopped) return "stopped";
  if (Number(host.lastSeenMsAgo) > QUIET_AFTER_MS) return "lost";
  // the autoscaler may be draining or deleting a host whose sidecar has not heard of it yet
  if (host.draining || provisioned?.state === "draining") return "draining";
  return provisioned?.state === "deleting" ? "deleting" : "ready";
}

/** `task hosts history [--pool P]`: every provisioning decision and provider call, oldest first. */
export async function hostsHistoryCommand(
  options: HostsCommandOptions & { limit?: number },
): Promise<number> {
  const history = await withHubClient(options, (client) =>
    client.getHostHistory({ pool: options.pool ?? "", limit: options.limit ?? 0 }),
  );
  if (options.json) {
    process.stdout.write(`${JSON.stringify(toJson(GetHostHistoryResponseSchema, history), null, 2)}\n`);
    return ExitCode.Ok;
  }
  process.stdout.write(
    history.events.length === 0
      ? "no provisioning yet\n"
      : `${renderTable(
          ["TIME", "POOL", "ACTION", "HOST", "DETAIL"],
          history.events.map((e) => [
            timestamp(Number(e.atUnixMs)),
            e.pool,
            e.action,
            e.providerHostId || (e.token ? `token ${e.token.slice(0, 8)}` : ""),
            e.detail,
          ]),
        )}\n`,
  );
  return ExitCode.Ok;
}
