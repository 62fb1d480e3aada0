import { catalogueScenario } from "./catalogue.js";
import { dagScenario } from "./dag.js";
import { distributedScenario } from "./distributed.js";
import { embeddedScenario } from "./embedded.js";
import { fanoutScenario } from "./embedded-fanout.js";
import { execScenario } from "./exec.js";
import { footprintScenario } from "./footprint.js";
import { handlersScenario } from "./handlers.js";
import { latencyScenario } from "./latency.js";
import { mapReduceScenario } from "./mapreduce.js";
import { rawRatesScenario } from "./raw-rates.js";
import { scalingScenario } from "./scaling.js";
import type { Scenario } from "./scenario.js";
import { schedulesScenario } from "./schedules.js";
import { spawnScenario } from "./spawn.js";

/** Every scenario, in the order `all` runs them. */
export const scenarios: readonly Scenario[] = [
  rawRatesScenario,
  handlersScenario,
  latencyScenario,
  execScenario,
  dagScenario,
  spawnScenario,
  scalingScenario,
  footprintScenario,
  embeddedScenario,
  distributedScenario,
  fanoutScenario,
  catalogueScenario,
  schedulesScenario,
  mapReduceScenario,
];
