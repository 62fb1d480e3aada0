import type { KeyHints } from "./schema-check.js";

/*
 * What users of GitHub Actions, Argo Workflows or docker compose write first, and the Taskframe way
 * to say it. Unknown keys with a hint get it instead of a "did you mean".
 */

const CONDITION = "use `condition: COMMAND` (the task runs if it exits 0 and is SKIPPED if it exits 1)";
const FOR_EACH =
  "use `for_each:` with a list (or { file: PATH }); each item makes a task NAME-0, NAME-1, ... " +
  `that refers to it as \${{ item }} or \${{ item.FIELD }}`;
const TIMEOUT = 'use `timeout:` with a duration such as "30m" or "1h"';
const CWD = "use `cwd:`";
const HOST =
  "not supported: Taskframe runs executables on the host (in the sidecar's jail), not actions or containers; use `run:`";
const OUTPUTS =
  "not supported in this version: tasks exchange data through files or a store they share; " +
  "order them with `needs:`";
const RETRY =
  "use `retries: N` (extra attempts), `retry_interval:`, `retry_backoff:` and `retry_max_interval:`";
const LIMITS =
  'use `limits:` with `memory:`, `disk:`, `pids:` and `cpu:`, e.g. `limits: { memory: 2G, cpu: "150%" }`';
const MEMORY = "use `limits: { memory: 2G }`";
const CPU = 'use `limits: { cpu: "150%" }` (a percentage of one CPU)';
const PIDS = "use `limits: { pids: 256 }` (processes and threads)";
const NETWORK = "use `private_network: true` to run the task without network (only a loopback interface)";
const JAIL =
  "every `run:` task runs in its pool's jail; ask for a stricter one with `jail: strict` (never a looser one)";
const NEEDS = "use `needs:` (tasks that must succeed first) or `after:` (ordering only)";
const RUN = "use `run:` with a command string or a list of argv words";
const SHELL = "`run:` never goes through a shell; write `run: [sh, -c, '...']` for shell syntax";

/** Hints for keys in a task (under `tasks:` or `steps:`) and in `defaults:`. */
export const TASK_KEY_HINTS: KeyHints = {
  if: CONDITION,
  when: CONDITION,
  matrix: FOR_EACH,
  strategy: FOR_EACH,
  withItems: FOR_EACH,
  with_items: FOR_EACH,
  withParam: FOR_EACH,
  loop: FOR_EACH,
  foreach: "did you mean `for_each:`?",
  "for-each": "did you mean `for_each:`?",
  "timeout-minutes": TIMEOUT,
  timeout_minutes: TIMEOUT,
  timeout_seconds: TIMEOUT,
  activeDeadlineSeconds: TIMEOUT,
  "working-directory": CWD,
  working_directory: CWD,
  workingDir: CWD,
  workdir: CWD,
  uses: HOST,
  with: "not supported (it belongs with `uses:`); pass arguments with `args:` or a handler's `input:`",
  container: HOST,
  image: HOST,
  services: HOST,
  "runs-on": "use `pool:` (the sidecar pool that may run the task)",
  outputs: OUTPUTS,
  artifacts: `${OUTPUTS}; to fetch a pinned file before the task runs, use \`install: { artifacts: [{ url, sha256 }] }\``,
  resources: LIMITS,
  memory: MEMORY,
  mem_limit: MEMORY,
  cpu: CPU,
  cpus: CPU,
  cpu_limit: CPU,
  pids: PIDS,
  pids_limit: PIDS,
  network: NETWORK,
  network_mode: NETWORK,
  privileged: JAIL,
  security_opt: JAIL,
  securityContext: JAIL,
  retry: RETRY,
  retryStrategy: RETRY,
  retry_strategy: RETRY,
  max_attempts: RETRY,
  attempts: RETRY,
  depends_on: NEEDS,
  dependsOn: NEEDS,
  depends: NEEDS,
  dependencies: NEEDS,
  requires: NEEDS,
  environment: "use `env:`",
  command: RUN,
  cmd: RUN,
  script: RUN,
  exec: RUN,
  shell: SHELL,
  arguments: "use `args:` (a list of arguments appended to the command)",
  "continue-on-error": "use `continue_on_error: true`",
  template: "use `run:`, `handler:` or `unit:`",
  templateRef: "use `unit:` to reuse a unit file",
  secrets: `pass secrets in the environment: \`env: { TOKEN: \${{ env.TOKEN }} }\``,
  description: "write a YAML comment (# ...)",
  check: "did you mean `checks:` (a list of commands run before the task)?",
  steps: "a task runs one command; to run several in order, list them under `steps:` at the top level",
  parallel: "a task runs one command; to run several at once, use a `parallel:` group under `steps:`",
};

/** Hints for top-level keys. */
export const PIPELINE_KEY_HINTS: KeyHints = {
  jobs: "use `tasks:` (a map of tasks, each with its `needs:`)",
  on: 'to run the pipeline on a schedule, use `schedule: { cron: "0 2 * * *" }` (and `timezone:`, `overlap:`, ...); otherwise run it with `task run`/`task submit`',
  cron: 'use `schedule: { cron: "0 2 * * *" }`',
  triggers: 'use `schedule: { cron: "0 2 * * *" }`',
  trigger: 'use `schedule: { cron: "0 2 * * *" }`',
  env: "use `defaults: { env: { ... } }`",
  inputs: "use `params:` (defaults and documentation; values given with --param NAME=VALUE)",
  arguments: "use `params:` (defaults and documentation; values given with --param NAME=VALUE)",
  vars: "use `params:`",
  variables: "use `params:`",
  parameters: "use `params:`",
  templates: "use `tasks:` or `steps:`",
  entrypoint: "use `tasks:` or `steps:`",
  apiVersion:
    "a pipeline is not a Kubernetes resource: write `name:`, `tasks:` and/or `steps:` at the top level",
  kind: "a pipeline is not a Kubernetes resource: write `name:`, `tasks:` and/or `steps:` at the top level",
  metadata:
    "a pipeline is not a Kubernetes resource: write `name:`, `tasks:` and/or `steps:` at the top level",
  spec: "a pipeline is not a Kubernetes resource: write `name:`, `tasks:` and/or `steps:` at the top level",
  concurrency: "not supported: the sidecars' slots and pools limit how many tasks run at once",
  permissions: "not supported: a task runs as its `user:`/`group:`",
  default: "did you mean `defaults:`?",
  task: "did you mean `tasks:`?",
};

const TIME_ZONE = "use `timezone:` with an IANA time zone such as Europe/Berlin (default UTC)";
const OVERLAP = 'use `overlap:` ("skip", "queue", "allow" or "cancel-previous")';
const CATCH_UP = 'use `catch_up:` ("skip", "latest", "backfill" or "backfill(max=N)")';
const JITTER = 'use `jitter:` with a duration such as "30s": each firing waits up to that long';

/** Hints for keys in `schedule:`, for what Kubernetes CronJobs, Airflow and systemd timers call them. */
export const SCHEDULE_KEY_HINTS: KeyHints = {
  schedule: 'use `cron:` with a cron expression such as "0 2 * * *"',
  expression: 'use `cron:` with a cron expression such as "0 2 * * *"',
  calendar: 'use `cron:` with a cron expression such as "0 2 * * *"',
  every: 'a schedule is a cron expression: every 5 minutes is `cron: "*/5 * * * *"`',
  interval: 'a schedule is a cron expression: every 5 minutes is `cron: "*/5 * * * *"`',
  tz: TIME_ZONE,
  time_zone: TIME_ZONE,
  timeZone: TIME_ZONE,
  zone: TIME_ZONE,
  concurrency: OVERLAP,
  concurrencyPolicy: OVERLAP,
  concurrency_policy: OVERLAP,
  max_active_runs: OVERLAP,
  misfire: CATCH_UP,
  persistent: CATCH_UP,
  backfill: CATCH_UP,
  startingDeadlineSeconds: CATCH_UP,
  random_delay: JITTER,
  randomized_delay: JITTER,
  splay: JITTER,
  start_date: "use `start:` with an ISO 8601 date or date-time such as 2026-12-01T08:00",
  end_date: "use `end:` with an ISO 8601 date or date-time such as 2027-01-01",
};
