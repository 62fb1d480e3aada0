import type { JailPolicy } from "./jail.js";

/** The operator's jail settings for a sidecar, as its configuration spells them. */
export type JailConfig = Omit<JailPolicy, "hidden" | "readOnly">;

export const DEFAULT_JAIL_CONFIG: JailConfig = {
  profile: "auto",
  defaultUser: "nobody",
  allowUnenforcedLimits: false,
  defaultPids: 4096,
  defaultTmpBytes: 1024n ** 3n,
};

/** From the sidecar's (or `task run`'s) validated settings. */
export function jailConfigOf(settings: {
  jail: JailConfig["profile"];
  "jail-user": string;
  "allow-unenforced-limits": boolean;
  "default-pids": number;
  "default-tmp-size": bigint;
}): JailConfig {
  return {
    profile: settings.jail,
    defaultUser: settings["jail-user"],
    allowUnenforcedLimits: settings["allow-unenforced-limits"],
    defaultPids: settings["default-pids"],
    defaultTmpBytes: settings["default-tmp-size"],
  };
}
