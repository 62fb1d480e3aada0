import { create } from "@bufbuild/protobuf";
import { sizeDelimitedDecodeStream } from "@bufbuild/protobuf/wire";
import {
  type SpawnerEvent,
  SpawnerEventSchema,
  SpawnerRequestSchema,
  type SpawnProcess,
} from "../../core/gen/taskframe/v1/spawner_pb.js";
import { LogStream } from "../../core/gen/taskframe/v1/state_pb.js";
import { type Confinement, runProcess } from "../process-runner.js";
import { FrameWriter } from "./frames.js";
import { ProcessLedger } from "./process-ledger.js";

/*
 * The spawner helper's entry point (see proto/taskframe/v1/spawner.proto):
 * requests on stdin, events on stdout. Kept free of anything but what it
 * needs, so that its own fork() stays cheap.
 */

const events = new FrameWriter(SpawnerEventSchema, process.stdout);
const running = new Map<number, AbortController>();
// where the process groups we start are written down, if the sidecar gave a place
const ledgerDir = process.env.TASKFRAME_SPAWNER_LEDGER;
const ledger = ledgerDir ? new ProcessLedger(ledgerDir) : undefined;

function start(request: SpawnProcess): void {
  const stop = new AbortController();
  running.set(request.id, stop);
  const limit = Number(request.outputLimitBytes) || Number.POSITIVE_INFINITY;
  let forwarded = 0;
  let dropped = 0;
  let spawned: number | undefined;
  const send = (event: SpawnerEvent["event"]) =>
    events.write(create(SpawnerEventSchema, { id: request.id, event }));
  runProcess({
    command: request.command,
    args: request.args,
    env: request.env,
    cwd: request.cwd,
    timeoutMs: Number(request.timeoutMs),
    killGraceMs: Number(request.killGraceMs),
    signal: stop.signal,
    confine: confinementOf(request),
    onSpawn(pid) {
      ledger?.record(pid);
      spawned = pid;
    },
    onOutput(stream, data) {
      const kept = Math.min(data.length, limit - forwarded);
      forwarded += kept;
      dropped += data.length - kept;
      if (kept === 0) return;
      send({
        case: "output",
        value: {
          $typeName: "taskframe.v1.ProcessOutput",
          stream: stream === "stdout" ? LogStream.STDOUT : LogStream.STDERR,
          data: kept === data.length ? data : data.subarray(0, kept),
        },
      });
    },
  })
    .then((outcome) =>
      send({
        case: "exit",
        value: {
          $typeName: "taskframe.v1.ProcessExit",
          ...(outcome.pid === undefined ? {} : { pid: outcome.pid }),
          ...(outcome.exitCode === null ? {} : { exitCode: outcome.exitCode }),
          signal: outcome.signal ?? "",
          timedOut: outcome.timedOut,
          cancelled: outcome.cancelled,
          spawnErrorCode: outcome.spawnError?.code ?? "",
          spawnErrorMessage: outcome.spawnError?.message ?? "",
          startedAtUnixMs: BigInt(outcome.startedAtMs),
          durationMs: outcome.durationMs,
          droppedOutputBytes: BigInt(dropped),
        },
      }),
    )
    .catch((error: unknown) =>
      send({
        case: "exit",
        value: {
          $typeName: "taskframe.v1.ProcessExit",
          signal: "",
          timedOut: false,
          cancelled: false,
          spawnErrorCode: "ESPAWNER",
          spawnErrorMessage: `the spawner failed to run the process: ${error instanceof Error ? error.message : String(error)}`,
          startedAtUnixMs: BigInt(Date.now()),
          durationMs: 0,
          droppedOutputBytes: 0n,
        },
      }),
    )
    .finally(() => {
      running.delete(request.id);
      if (spawned !== undefined) ledger?.forget(spawned);
    });
}

/**
 * The request's confinement, for runProcess: it reports ENOTSUP for cgroups
 * and seccomp, sets uid and gid through Node's spawn (supplementary groups
 * dropped), and leaves noCoreDumps out.
 */
function confinementOf(request: SpawnProcess): Confinement | undefined {
  const { cgroupProcsFiles, seccompFilterPath, noCoreDumps, uid, gid, groups } = request;
  if (
    cgroupProcsFiles.length === 0 &&
    !seccompFilterPath &&
    !noCoreDumps &&
    uid === undefined &&
    gid === undefined
  )
    return undefined;
  return {
    cgroupProcsFiles,
    ...(seccompFilterPath ? { seccompFilterPath } : {}),
    noCoreDumps,
    // the sidecar sends both or neither; one alone keeps the helper's for the other, as Node's spawn does
    ...(uid !== undefined || gid !== undefined
      ? { account: { uid: uid ?? process.getuid!(), gid: gid ?? process.getgid!(), groups } }
      : {}),
  };
}

async function main(): Promise<void> {
  for await (const request of sizeDelimitedDecodeStream(SpawnerRequestSchema, process.stdin)) {
    switch (request.request.case) {
      case "spawn":
        start(request.request.value);
        break;
      case "stop":
        running.get(request.request.value.id)?.abort();
        break;
      case undefined:
        break;
    }
  }
  // stdin closed: the sidecar is gone, and nobody would hear about these tasks
  for (const stop of running.values()) stop.abort();
  const deadline = Date.now() + 10_000;
  while (running.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  events.flush();
  ledger?.close();
  process.exit(0);
}

process.stdout.on("error", () => {}); // the sidecar went away; main() ends on stdin EOF
void main();
