import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { DURATION_BUCKETS_SECONDS } from "../core/metrics.js";
import { type TaskState, taskStateName } from "../core/states.js";

/**
 * What a sidecar measures for Prometheus (`task sidecar --metrics-listen`):
 * attempts of executables by outcome and their duration, leases held, and
 * redeliveries (work leased again after another lease of it was lost).
 */
export class SidecarMetrics {
  readonly #attempts: Counter<"state">;
  readonly #attemptSeconds: Histogram<"state">;
  readonly #redeliveries: Counter;

  constructor(registry: Registry, leasesInFlight: () => number) {
    const registers = [registry];
    this.#attempts = new Counter({
      name: "taskframe_sidecar_attempts_total",
      help: "Attempts this sidecar ran to an end, by the state they ended in",
      labelNames: ["state"],
      registers,
    });
    this.#attemptSeconds = new Histogram({
      name: "taskframe_sidecar_attempt_seconds",
      help: "Wall time of attempts from lease to end (installs and checks included), by end state",
      labelNames: ["state"],
      buckets: DURATION_BUCKETS_SECONDS,
      registers,
    });
    this.#redeliveries = new Counter({
      name: "taskframe_sidecar_redeliveries_total",
      help: "Work items leased again (a previous lease of them expired or was handed back)",
      registers,
    });
    new Gauge({
      name: "taskframe_sidecar_leases_in_flight",
      help: "Work items leased and running on this sidecar",
      registers,
      collect() {
        this.set(leasesInFlight());
      },
    });
  }

  redelivered(): void {
    this.#redeliveries.inc();
  }

  ended(state: TaskState, seconds: number): void {
    const label = { state: taskStateName(state) };
    this.#attempts.inc(label);
    this.#attemptSeconds.observe(label, seconds);
  }
}
