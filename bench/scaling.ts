import { DEFAULT_SUSTAIN, type HandlersResult, handlersRun } from "./handlers.js";
import { mb, ms, type Scenario } from "./scenario.js";

const HUB_COUNTS = [1, 2, 3];
const SIDECARS = 4;

/**
 * How throughput moves as hubs are added, all on this box: 1, 2 and 3 hubs
 * in front of 4 sidecars (each with a TypeScript no-op worker), the same
 * sustained load as the handlers scenario, over loopback.
 */
export const scalingScenario: Scenario = {
  name: "scaling",
  summary:
    `1, 2 and 3 hubs with ${SIDECARS} sidecars (a TypeScript worker each) on this box: no-op handler\n` +
    "tasks finished in a --seconds window (default 30) after 10 s of warm-up, runs submitted to every hub in turn",
  async run({ seconds = 30, concurrency, db, nats, progress }) {
    const sustain = { ...DEFAULT_SUSTAIN, windowSeconds: seconds };
    const results: HandlersResult[] = [];
    for (const hubs of HUB_COUNTS) {
      progress(`  ${hubs} hub(s) + ${SIDECARS} sidecars ...`);
      results.push(
        await handlersRun({
          dbUrl: db,
          natsUrl: nats,
          concurrency,
          sustain,
          hubs,
          sidecars: SIDECARS,
          workers: ["typescript"],
          progress,
        }),
      );
    }
    const base = results[0]!.finished / results[0]!.windowSeconds;
    return {
      data: { sustain, results },
      tables: [
        {
          title: `scaling: hubs in front of ${SIDECARS} sidecars, all on this box (${seconds} s windows)`,
          header: [
            "hubs",
            "sidecars",
            "finished/s",
            "vs 1 hub",
            "submit->start p50",
            "p99",
            "hub RSS",
            "sidecar RSS",
          ],
          rows: results.map((r) => {
            const rate = r.finished / r.windowSeconds;
            return [
              String(r.hubs),
              String(r.sidecars),
              rate.toFixed(0),
              `${(rate / base).toFixed(2)}x`,
              ms(r.submitToStart.p50),
              ms(r.submitToStart.p99),
              r.hubPeakRssBytes.map(mb).join(", "),
              r.sidecarPeakRssBytes.map(mb).join(", "),
            ];
          }),
        },
      ],
    };
  },
};
