import type { CompiledUnit } from "./compiled-unit.js";
import { DEFAULT_RESTART_MS, TARGET_COMMAND } from "./unit-spec.js";

/**
 * Up when an interface other than loopback is: operstate "up", or "unknown" with a carrier
 * (tunnels and some virtual interfaces never report "up"). Linux only: elsewhere there is no
 * /sys/class/net and the check fails saying so.
 */
export const NETWORK_CHECK_SCRIPT = [
  "for state in /sys/class/net/*/operstate; do",
  '  [ -r "$state" ] || continue',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  '  dir="${state%/operstate}"',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
  '  [ "${dir##*/}" = lo ] && continue',
  '  case "$(cat "$state")" in',
  "    up) exit 0 ;;",
  '    unknown) [ "$(cat "$dir/carrier" 2>/dev/null)" = 1 ] && exit 0 ;;',
  "  esac",
  "done",
  'echo "network.target: no network interface other than lo is up (read /sys/class/net/*/operstate)" >&2',
  "exit 1",
].join("\n");

/** Targets that exist without a file; a file of the same name in the catalogue replaces one. */
export const BUILTIN_TARGET_NAMES: readonly string[] = ["network.target"];

export function builtinTarget(fileName: string, dir: string): CompiledUnit | undefined {
  if (fileName !== "network.target") return undefined;
  const file = `built-in:${fileName}`;
  return {
    fileName,
    file,
    dir,
    name: "network",
    kind: "target",
    builtin: true,
    requires: [],
    after: [],
    wants: [],
    task: {
      name: "network",
      command: TARGET_COMMAND,
      args: [],
      env: {},
      cwd: dir,
      retries: 0,
      retryIntervalMs: DEFAULT_RESTART_MS,
      nonRetryableExitCodes: [],
      timeoutMs: 0,
      memoryBytes: 0n,
      diskBytes: 0n,
      pids: 0,
      cpuMillis: 0,
      privateNetwork: false,
      jail: "",
      checks: [{ name: "network-up", command: "/bin/sh", args: ["-c", NETWORK_CHECK_SCRIPT] }],
      user: "",
      group: "",
      definedAt: `${file}:1`,
    },
  };
}
