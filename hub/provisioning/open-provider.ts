import type { ProviderConfig } from "../../core/autoscale-config.js";
import type { Logger } from "../../core/logger.js";
import { HttpHostProvider } from "./http-provider.js";
import { KubernetesHostProvider } from "./kubernetes-provider.js";
import { LocalHostProvider } from "./local-provider.js";
import type { HostProvider } from "./provider.js";

/**
 * The provider the hub config names. `sidecarArgs` are the flags a local
 * sidecar needs to reach the same NATS and namespace as this hub.
 */
export function openProvider(
  config: ProviderConfig,
  context: { sidecarArgs: string[]; sidecarEnv: Record<string, string>; logger: Logger },
): HostProvider {
  switch (config.kind) {
    case "local":
      return new LocalHostProvider({
        sidecarArgs: [...context.sidecarArgs, ...config["sidecar-args"]],
        env: context.sidecarEnv,
        logger: context.logger,
      });
    case "http":
      return new HttpHostProvider({
        url: config.url,
        timeoutMs: config.timeout,
        ...(config.token ? { token: config.token } : {}),
      });
    case "kubernetes":
      return new KubernetesHostProvider({
        apiUrl: config.api,
        namespace: config.namespace,
        statefulSet: config["stateful-set"],
        timeoutMs: config.timeout,
        ...(config.token ? { token: config.token } : {}),
      });
  }
}
