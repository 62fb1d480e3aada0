import { create } from "@bufbuild/protobuf";
import { HostHeartbeatSchema } from "../core/gen/taskframe/v1/messages_pb.js";
import { drainNames, type HostChannel } from "../core/host-channel.js";
import type { Logger } from "../core/logger.js";

export interface HostReporterOptions {
  channel: HostChannel;
  host: string;
  /** The provider's id of this host (TASKFRAME_PROVIDER_HOST_ID), "" if a person started it. */
  providerHostId: string;
  pools: readonly string[];
  slots: number;
  labels: Record<string, string>;
  /** Tasks running now, and whether the sidecar is draining. */
  load: () => { running: number; draining: boolean };
  /** A hub asked this host to drain and stop. */
  onDrain: (reason: string) => void;
  intervalMs: number;
  logger: Logger;
}

/**
 * Tells the hubs this host is there, every `intervalMs` and once more when
 * it stops, and listens for a hub asking it to drain (the autoscaler
 * removing it).
 */
export class HostReporter {
  readonly #options: HostReporterOptions;
  readonly #startedAtMs = Date.now();
  readonly #halt = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #listening: Promise<void> | undefined;

  constructor(options: HostReporterOptions) {
    this.#options = options;
  }

  start(): void {
    this.#beat(false);
    this.#timer = setInterval(() => this.#beat(false), this.#options.intervalMs);
    this.#timer.unref();
    this.#listening = this.#listen(this.#halt.signal);
  }

  /** Sends the last heartbeat (stopped) and stops listening. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#halt.abort();
    await this.#listening;
    await this.#beat(true);
  }

  async #listen(signal: AbortSignal): Promise<void> {
    const { channel, host, providerHostId } = this.#options;
    try {
      for await (const request of channel.drains(signal)) {
        if (drainNames(request, host, providerHostId)) this.#options.onDrain(request.reason);
      }
    } catch (error) {
      if (!signal.aborted) this.#options.logger.warn({ err: error }, "stopped listening for drain requests");
    }
  }

  async #beat(stopped: boolean): Promise<void> {
    const { running, draining } = this.#options.load();
    const beat = create(HostHeartbeatSchema, {
      host: this.#options.host,
      providerHostId: this.#options.providerHostId,
      pools: [...this.#options.pools],
      slots: this.#options.slots,
      running,
      draining: draining || stopped,
      stopped,
      labels: this.#options.labels,
      startedAtUnixMs: BigInt(this.#startedAtMs),
      sentAtUnixMs: BigInt(Date.now()),
    });
    await this.#options.channel
      .publishHeartbeat(beat)
      .catch((error: unknown) => this.#options.logger.warn({ err: error }, "could not send a heartbeat"));
  }
}
