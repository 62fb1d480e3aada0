import { readFileSync } from "node:fs";
import { fromBinary } from "@bufbuild/protobuf";
import { type ConsumerInfo, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import postgres from "postgres";
import { TaskSpecSchema } from "../../../core/gen/taskframe/v1/spec_pb.js";
import { LogStream } from "../../../core/gen/taskframe/v1/state_pb.js";
import { NatsNames } from "../../../core/nats/names.js";
import { isTerminal, TaskState, taskStateName } from "../../../core/states.js";
import { type Execution, expectedLog, LEDGER_TASK, readLedger } from "./ledger.js";

export type InvariantId = "I1" | "I2" | "I3" | "I4" | "I5" | "I6" | "I7";

export const INVARIANTS: Record<InvariantId, string> = {
  I1: "one terminal state per task, none left non-terminal",
  I2: "executions per task <= attempts + recorded duplicate causes",
  I3: "one accepted result per task, from the execution holding the lease; overlaps only with a recorded cause",
  I4: "DAG order: a child starts only after its parents succeeded; failed parents leave no child running",
  I5: "no leftovers: queue drained, outbox empty, no task process alive",
  I6: "logs complete: stored stdout equals what the execution wrote",
  I7: "counts match: submitted = terminal in Postgres = accepted executions in the ledger",
};

export interface Duplicate {
  task: string;
  attempt: number;
  executions: number;
  reason: string;
}

export interface InvariantReport {
  tasks: number;
  executions: number;
  duplicates: Duplicate[];
  violations: Record<InvariantId, string[]>;
  states: Record<string, number>;
}

interface TaskRow {
  id: string;
  name: string;
  state: number;
  attempt: number;
  max_attempts: number;
  lease_epoch: string;
  spec: Buffer;
}

interface EventRow {
  task_id: string;
  attempt: number;
  from_state: number;
  to_state: number;
  lease_epoch: string;
  detail: string;
  rejected: boolean;
}

/** Audit details that explain a second execution of one attempt (the hub records each). */
const DUPLICATE_CAUSE =
  /^(redelivered to |published again|dead letter|rejected: the task is already \w+: a redelivery|rejected: a second delivery of the lease)/;

/**
 * Checks I1-I7 (../shared/RELIABILITY.md §4.0) against the scenario's
 * Postgres database, its NATS namespace and the ledger the tasks wrote.
 * Run after quiescence; returns every violation rather than the first.
 */
export async function checkInvariants(target: {
  dbUrl: string;
  natsUrl: string;
  namespace: string;
  ledgerDir: string;
  /**
   * Retention ran: tasks whose every execution ended before this time (ms
   * since the epoch) may be gone from Postgres; any other task missing is
   * still a violation.
   */
  prunedBefore?: number;
}): Promise<InvariantReport> {
  const violations: Record<InvariantId, string[]> = {
    I1: [],
    I2: [],
    I3: [],
    I4: [],
    I5: [],
    I6: [],
    I7: [],
  };
  const client = postgres(target.dbUrl, { max: 1, onnotice: () => {} });
  try {
    // one snapshot for every read: the hubs (retention, say) may still change the store meanwhile
    return await client.begin("isolation level repeatable read read only", async (sql) => {
      const tasks = await sql<
        TaskRow[]
      >`select id, name, state, attempt, max_attempts, lease_epoch::text, spec from tasks`;
      const events = await sql<EventRow[]>`
      select task_id, attempt, from_state, to_state, lease_epoch::text, detail, rejected from task_events order by id`;
      const edges = await sql<{ parent_id: string; child_id: string; kind: string }[]>`
      select parent_id, child_id, kind from task_edges`;
      const [outboxRow] = await sql<{ outbox: number }[]>`select count(*)::int as outbox from outbox`;
      const outbox = outboxRow?.outbox ?? 0;
      const unfinishedRuns = await sql<{ id: string }[]>`select id from runs where finished_at is null`;
      const ledger = await readLedger(target.ledgerDir);

      const byTask = groupBy(ledger, (e) => e.taskId);
      const eventsByTask = groupBy(events, (e) => e.task_id);
      const taskById = new Map(tasks.map((t) => [t.id, t]));
      const states: Record<string, number> = {};
      const duplicates: Duplicate[] = [];

      for (const task of tasks) {
        const name = `${task.name} (${task.id.slice(0, 8)})`;
        states[taskStateName(task.state)] = (states[taskStateName(task.state)] ?? 0) + 1;
        const taskEvents = eventsByTask.get(task.id) ?? [];
        const executions = byTask.get(task.id) ?? [];
        const accepted = taskEvents.filter((e) => !e.rejected);
        const terminalEvents = accepted.filter((e) => isTerminal(e.to_state));

        // I1
        if (!isTerminal(task.state)) violations.I1.push(`${name} ended ${taskStateName(task.state)}`);
        else if (terminalEvents.length !== 1)
          violations.I1.push(`${name} has ${terminalEvents.length} accepted terminal events`);

        // I2: per attempt, executions beyond the first need a recorded cause
        const causes = taskEvents.filter((e) => DUPLICATE_CAUSE.test(e.detail));
        for (const [attempt, runs] of groupBy(executions, (e) => e.attempt)) {
          if (runs.length <= 1) continue;
          const explained = causes.filter((c) => c.attempt === attempt);
          const reason = explained.map((c) => c.detail).join("; ");
          duplicates.push({ task: name, attempt, executions: runs.length, reason: reason || "UNEXPLAINED" });
          if (explained.length < runs.length - 1)
            violations.I2.push(
              `${name} attempt ${attempt} ran ${runs.length} times with ${explained.length} recorded cause(s); ` +
                `executions: ${runs.map((e) => `${e.host} lease ${e.leaseEpoch} exit ${e.exitCode ?? "-"}`).join(", ")}; ` +
                `audit: ${taskEvents.map((e) => `${taskStateName(e.to_state)}${e.rejected ? " rejected" : ""} lease ${e.lease_epoch} ${e.detail}`.trim()).join(" | ")}`,
            );
        }
        if (task.attempt > task.max_attempts)
          violations.I2.push(`${name} reached attempt ${task.attempt} of ${task.max_attempts}`);
        const ranAttempts = new Set(executions.map((e) => e.attempt));
        if ([...ranAttempts].some((a) => a > task.max_attempts))
          violations.I2.push(`${name} executed an attempt beyond ${task.max_attempts}`);

        // I3: the accepted success came from an execution that held the lease and exited 0
        const final = terminalEvents[0];
        if (final?.to_state === TaskState.SUCCEEDED) {
          const holder = executions.find(
            (e) =>
              e.attempt === final.attempt && e.leaseEpoch === Number(final.lease_epoch) && e.exitCode === 0,
          );
          if (!holder) {
            const [stderr] = await sql<{ text: string }[]>`
            select coalesce(string_agg(convert_from(data, 'UTF8'), '' order by seq), '') as text from log_chunks
            where task_id = ${task.id} and stream <> ${LogStream.STDOUT}`;
            violations.I3.push(
              `${name} SUCCEEDED with attempt ${final.attempt}, lease ${final.lease_epoch}, but no such execution exited 0 (its stderr: ${JSON.stringify(stderr?.text.slice(-300) ?? "")})`,
            );
          }
        }
        for (const [transition, applied] of groupBy(accepted, (e) =>
          [e.attempt, e.from_state, e.to_state, e.lease_epoch].join(" "),
        )) {
          if (applied.length > 1)
            violations.I3.push(`${name}: transition ${transition} applied ${applied.length} times`);
        }
        for (const [a, b] of overlappingPairs(executions)) {
          if (!causes.some((c) => c.attempt === a.attempt || c.attempt === b.attempt))
            violations.I3.push(
              `${name}: executions on ${a.host} and ${b.host} overlapped with no recorded cause`,
            );
        }

        // I6: what the accepted execution wrote is what is stored
        if (final?.to_state === TaskState.SUCCEEDED) {
          const lines = logLinesOf(task);
          if (lines !== undefined) {
            const chunks = await sql<{ data: Buffer; dropped_bytes: string }[]>`
            select data, dropped_bytes::text from log_chunks
            where task_id = ${task.id} and attempt = ${final.attempt} and stream = ${LogStream.STDOUT}
            order by seq`;
            const stored = Buffer.concat(chunks.map((c) => c.data)).toString("utf8");
            const dropped = chunks.reduce((n, c) => n + Number(c.dropped_bytes), 0);
            const expected = expectedLog(task.id, final.attempt, lines);
            if (dropped === 0 && stored !== expected)
              violations.I6.push(
                `${name}: stored ${stored.length} bytes of stdout, the task wrote ${expected.length}`,
              );
          }
        }
      }

      // I4
      for (const edge of edges) {
        const parent = taskById.get(edge.parent_id);
        const child = taskById.get(edge.child_id);
        if (!parent || !child) continue;
        const childRuns = byTask.get(child.id) ?? [];
        if (edge.kind === "requires" && parent.state !== TaskState.SUCCEEDED) {
          if (childRuns.length > 0 || child.state === TaskState.SUCCEEDED)
            violations.I4.push(
              `${child.name} ran although ${parent.name} ended ${taskStateName(parent.state)}`,
            );
          continue;
        }
        const parentEnd = maxEnd((byTask.get(parent.id) ?? []).filter((e) => e.exitCode === 0));
        const childStart = minStart(childRuns);
        if (parentEnd !== undefined && childStart !== undefined && childStart < parentEnd)
          violations.I4.push(`${child.name} started before ${parent.name} ended`);
      }

      // I5
      if (outbox > 0) violations.I5.push(`${outbox} outbox rows left`);
      if (unfinishedRuns.length > 0) violations.I5.push(`${unfinishedRuns.length} runs not finished`);
      for (const execution of ledger) {
        if (execution.endNs === undefined && isLedgerTaskAlive(execution.pid))
          violations.I5.push(
            `task process ${execution.pid} (${execution.taskId.slice(0, 8)}) is still alive`,
          );
      }
      violations.I5.push(...(await queueLeftovers(target.natsUrl, target.namespace)));

      // I7
      const terminal = tasks.filter((t) => isTerminal(t.state)).length;
      const succeeded = tasks.filter((t) => t.state === TaskState.SUCCEEDED).length;
      const acceptedSuccesses = tasks.filter(
        (t) => t.state === TaskState.SUCCEEDED && byTask.has(t.id),
      ).length;
      if (terminal !== tasks.length) violations.I7.push(`${tasks.length} submitted, ${terminal} terminal`);
      if (acceptedSuccesses !== succeeded)
        violations.I7.push(`${succeeded} SUCCEEDED in Postgres, ${acceptedSuccesses} of them in the ledger`);
      const pruned = (executions: readonly Execution[]) =>
        target.prunedBefore !== undefined &&
        executions.every((e) => e.endNs !== undefined && Number(e.endNs / 1_000_000n) < target.prunedBefore!);
      const unknown = [...byTask].filter(([id, executions]) => !taskById.has(id) && !pruned(executions));
      if (unknown.length > 0) violations.I7.push(`${unknown.length} tasks in the ledger are not in Postgres`);

      return { tasks: tasks.length, executions: ledger.length, duplicates, violations, states };
    });
  } finally {
    await client.end();
  }
}

function logLinesOf(task: TaskRow): number | undefined {
  const spec = fromBinary(TaskSpecSchema, task.spec);
  if (spec.target.case !== "exec" || spec.target.value.command !== LEDGER_TASK) return undefined;
  return Number(spec.target.value.args[3] ?? 0);
}

function* overlappingPairs(executions: Execution[]): Iterable<[Execution, Execution]> {
  for (let i = 0; i < executions.length; i++) {
    for (let j = i + 1; j < executions.length; j++) {
      const a = executions[i]!;
      const b = executions[j]!;
      const aEnd = a.endNs ?? BigInt(Number.MAX_SAFE_INTEGER) * 1_000_000n;
      const bEnd = b.endNs ?? BigInt(Number.MAX_SAFE_INTEGER) * 1_000_000n;
      if (a.startNs < bEnd && b.startNs < aEnd) yield [a, b];
    }
  }
}

const maxEnd = (executions: Execution[]) =>
  executions.reduce<bigint | undefined>(
    (m, e) => (e.endNs !== undefined && (m === undefined || e.endNs > m) ? e.endNs : m),
    undefined,
  );
const minStart = (executions: Execution[]) =>
  executions.reduce<bigint | undefined>(
    (m, e) => (m === undefined || e.startNs < m ? e.startNs : m),
    undefined,
  );

/** The pid belongs to a live ledger task (not a recycled pid). */
function isLedgerTaskAlive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("ledger-task");
  } catch {
    return false;
  }
}

/** The state of every work consumer of the namespace (one per lane stream). */
export async function workConsumers(natsUrl: string, namespace: string): Promise<ConsumerInfo[]> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    const names = new NatsNames(namespace);
    const consumers: ConsumerInfo[] = [];
    for await (const stream of jsm.streams.list()) {
      if (!names.isWorkStream(stream.config.name)) continue;
      for await (const consumer of jsm.consumers.list(stream.config.name)) consumers.push(consumer);
    }
    return consumers;
  } finally {
    await nc.close();
  }
}

/** Events (logs, transitions) the hubs have not recorded yet: the recorder consumer's pending and unacked. */
export async function recorderBacklog(natsUrl: string, namespace: string): Promise<number> {
  const nc = await connect({ servers: natsUrl });
  try {
    const names = new NatsNames(namespace);
    const jsm = await jetstreamManager(nc);
    const info = await jsm.consumers.info(names.eventStream, names.recorderConsumer);
    return info.num_pending + info.num_ack_pending;
  } finally {
    await nc.close();
  }
}

async function queueLeftovers(natsUrl: string, namespace: string): Promise<string[]> {
  const backlog = await recorderBacklog(natsUrl, namespace);
  const unrecorded = backlog > 0 ? [`${backlog} events not recorded`] : [];
  return (await workConsumers(natsUrl, namespace))
    .filter((c) => c.num_pending + c.num_ack_pending > 0)
    .map(
      (c) =>
        `consumer ${c.stream_name}/${c.name}: ${c.num_pending} pending, ${c.num_ack_pending} unacknowledged`,
    )
    .concat(unrecorded);
}

export function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}
