import { isIPv4, isIPv6 } from "node:net";

/**
 * Whether a peer address is this machine: 127.0.0.0/8, ::1 (and
 * ::ffff:127.x.y.z), or a unix socket (no address at all).
 */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return true;
  const v4 = address.startsWith("::ffff:") ? address.slice("::ffff:".length) : address;
  if (isIPv4(v4)) return v4.split(".")[0] === "127";
  return isIPv6(address) && (address === "::1" || address === "0:0:0:0:0:0:0:1");
}
