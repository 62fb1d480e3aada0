export { BUILTIN_TARGET_NAMES, NETWORK_CHECK_SCRIPT } from "./builtin-targets.js";
export { buildCatalogue, type Catalogue, listUnitFiles, loadCatalogue } from "./catalogue.js";
export type {
  CommandTemplate,
  CompiledUnit,
  MapReduceSettings,
  TaskTemplate,
  UnitReference,
  UnitScheduleSettings,
} from "./compiled-unit.js";
export { cronProblem } from "./cron.js";
export { type IniEntry, type IniPosition, type IniSection, IniValue } from "./ini.js";
export { type IniDocument, parseIni } from "./ini-parser.js";
export {
  type ArtifactPin,
  JAIL_PROFILES,
  type JailProfile,
  MAX_CPU_PERCENT,
  PIDS_INFINITY,
} from "./jail-settings.js";
export {
  loadCatalogueRun,
  loadDirectoryCatalogue,
  loadUnitCatalogue,
  loadUnitClosure,
  loadUnitRun,
} from "./load-units.js";
export { MAX_REPORTED_PROBLEMS } from "./problems.js";
export { readUnitTexts, type UnitText } from "./read-units.js";
export { parseSizeBytes } from "./size.js";
export { taskSpecOf } from "./task-spec-of.js";
export type { UnitFields } from "./unit-fields.js";
export { type ParsedUnit, parseUnitText } from "./unit-file.js";
export { taskNameOf, type UnitKind } from "./unit-names.js";
export { compileUnitRun, type UnitRunOptions } from "./unit-run.js";
export { ON_FAILURE_RETRIES } from "./unit-values.js";
