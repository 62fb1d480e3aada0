import { catalogueScenario } from "./catalogue.js";
import { distributedScenario } from "./distributed.js";
import { fanoutScenario } from "./embedded-fanout.js";
import { handlersScenario } from "./handlers.js";
import { scalingScenario } from "./scaling.js";
import type { Scenario } from "./scenario.js";

/** Every scenario, in the order `all` runs them. */
export const scenarios: readonly Scenario[] = [
  handlersScenario,
  distributedScenario,
  fanoutScenario,
  catalogueScenario,
  scalingScenario,
];
