import { createHash } from "node:crypto";
import { context, type Span, SpanStatusCode, TraceFlags, trace } from "@opentelemetry/api";
import type { WorkItem } from "../core/gen/taskframe/v1/messages_pb.js";
import { TaskState as States, type TaskState, taskStateName } from "../core/states.js";

/** The trace of one attempt: its W3C `traceparent`, for the task, and the span to end. */
export interface AttemptTrace {
  /** `00-<trace id>-<span id>-01`: TRACEPARENT for executables, Assignment.traceparent for handlers. */
  readonly traceparent: string;
  /** Ends the span with the attempt's outcome; later calls do nothing. */
  end(state: TaskState, detail: string): void;
}

/** A run's trace id: its id's 32 hex digits, so that every attempt of a run is in one trace. */
export const traceIdOf = (runId: string): string => runId.replace(/-/g, "").toLowerCase().padStart(32, "0");

const spanIdOf = (...parts: (string | number)[]): string =>
  createHash("sha256").update(parts.join(":")).digest("hex").slice(0, 16);

/**
 * A span per attempt, child of the run's root (span id derived from the run
 * id, so hubs and sidecars agree without talking). Spans go through the
 * global OpenTelemetry API: nothing is recorded unless the process has an
 * SDK registered (e.g. `node --import @opentelemetry/auto-instrumentations-node/register`
 * with OTEL_* variables). Either way the task gets a valid `traceparent`: the
 * recording span's, or one derived from the task id and attempt.
 */
export function startAttemptTrace(item: WorkItem, host: string): AttemptTrace {
  const traceId = traceIdOf(item.runId);
  const parent = trace.setSpanContext(context.active(), {
    traceId,
    spanId: spanIdOf("run", item.runId),
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  });
  const name = item.spec?.name ?? "";
  const span: Span = trace.getTracer("taskframe-sidecar").startSpan(
    `task ${name}`,
    {
      attributes: {
        "taskframe.task.id": item.taskId,
        "taskframe.task.name": name,
        "taskframe.run.id": item.runId,
        "taskframe.attempt": item.attempt,
        "taskframe.pool": item.spec?.pool || "default",
        "host.name": host,
      },
    },
    parent,
  );
  const own = span.isRecording()
    ? span.spanContext()
    : { traceId, spanId: spanIdOf("attempt", item.taskId, item.attempt) };
  let ended = false;
  return {
    traceparent: `00-${own.traceId}-${own.spanId}-01`,
    end(state, detail) {
      if (ended) return;
      ended = true;
      span.setAttribute("taskframe.state", taskStateName(state));
      if (state !== States.SUCCEEDED && state !== States.SKIPPED)
        span.setStatus({ code: SpanStatusCode.ERROR, message: detail || taskStateName(state) });
      span.end();
    },
  };
}
