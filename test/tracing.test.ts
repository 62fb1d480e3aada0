import { randomBytes } from "node:crypto";
import {
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
  type SpanStatus,
  TraceFlags,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { traceIdOf } from "../sidecar/attempt-trace.js";
import { runSpec, runToEnd, shellTask, startEngine, type TestEngine } from "./helpers/engine.js";

/** What the test's tracer recorded of one span. */
interface Recorded {
  name: string;
  context: SpanContext;
  parent: SpanContext | undefined;
  attributes: Attributes;
  status: SpanStatus | undefined;
  ended: boolean;
}

/**
 * A recording tracer through the OpenTelemetry API, as an SDK would register
 * one. (The SDK packages on npm accept @opentelemetry/api below 1.10, which
 * this project uses; the API's contract is what the sidecar codes against.)
 */
class RecordingTracer implements Tracer {
  readonly spans: Recorded[] = [];
  startSpan(name: string, options: { attributes?: Attributes } = {}, context?: Context): Span {
    const parent = context ? trace.getSpanContext(context) : undefined;
    const record: Recorded = {
      name,
      context: {
        traceId: parent?.traceId ?? randomBytes(16).toString("hex"),
        spanId: randomBytes(8).toString("hex"),
        traceFlags: TraceFlags.SAMPLED,
      },
      parent,
      attributes: { ...options.attributes },
      status: undefined,
      ended: false,
    };
    this.spans.push(record);
    const span: Span = {
      spanContext: () => record.context,
      setAttribute: (key, value) => {
        if (value !== undefined) record.attributes[key] = value;
        return span;
      },
      setAttributes: (attributes) => {
        Object.assign(record.attributes, attributes);
        return span;
      },
      addEvent: () => span,
      addLink: () => span,
      addLinks: () => span,
      setStatus: (status) => {
        record.status = status;
        return span;
      },
      updateName: () => span,
      end: () => {
        record.ended = true;
      },
      isRecording: () => !record.ended,
      recordException: () => {},
    };
    return span;
  }
  startActiveSpan(): never {
    throw new Error("not used by the sidecar");
  }
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

/** What the tasks of a finished run printed, by task name. */
async function outputs(engine: TestEngine, runId: string, names: string[]): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  for (const name of names) {
    let text = "";
    for await (const chunk of engine.client.getLogs({ task: { runId, name } }))
      for (const entry of chunk.entries) if (entry.stream === 1) text += Buffer.from(entry.data).toString();
    result.set(name, text);
  }
  return result;
}

describe("trace context", () => {
  let engine: TestEngine;
  beforeAll(async () => {
    engine = await startEngine("pglite");
  });
  afterAll(async () => {
    trace.disable();
    await engine?.[Symbol.asyncDispose]();
  });

  it("gives every attempt a TRACEPARENT in the run's trace, a span of its own per attempt", async () => {
    const finished = await runToEnd(
      engine.client,
      runSpec("traced", [
        shellTask("a", 'echo "$TRACEPARENT"'),
        shellTask("retried", 'echo "$TRACEPARENT"; [ "$TASKFRAME_ATTEMPT" = 2 ]', {
          retry: { retries: 1, intervalMs: 10n },
        }),
      ]),
    );
    const printed = await outputs(engine, finished.run.id, ["a", "retried"]);
    const traceId = traceIdOf(finished.run.id);
    const a = TRACEPARENT.exec(printed.get("a")!.trim());
    expect(a?.[1]).toBe(traceId);
    const attempts = printed
      .get("retried")!
      .trim()
      .split("\n")
      .map((line) => TRACEPARENT.exec(line));
    expect(attempts.map((m) => m?.[1])).toEqual([traceId, traceId]);
    expect(new Set([a?.[2], attempts[0]?.[2], attempts[1]?.[2]]).size).toBe(3);
  });

  it("with an OpenTelemetry SDK registered, records a span per attempt, its outcome, and hands it to the task", async () => {
    const tracer = new RecordingTracer();
    trace.setGlobalTracerProvider({ getTracer: () => tracer });
    const finished = await runToEnd(
      engine.client,
      runSpec("traced", [
        shellTask("ok", 'echo "$TRACEPARENT"'),
        shellTask("bad", 'echo "$TRACEPARENT"; exit 4'),
      ]),
    );
    trace.disable();
    const printed = await outputs(engine, finished.run.id, ["ok", "bad"]);
    const spans = tracer.spans.filter((s) => s.attributes["taskframe.run.id"] === finished.run.id);
    expect(spans.map((s) => s.name).sort()).toEqual(["task bad", "task ok"]);
    for (const span of spans) {
      const name = String(span.attributes["taskframe.task.name"]);
      expect(span.ended).toBe(true);
      expect(span.context.traceId).toBe(traceIdOf(finished.run.id));
      expect(span.parent?.traceId).toBe(traceIdOf(finished.run.id));
      expect(printed.get(name)!.trim()).toBe(`00-${span.context.traceId}-${span.context.spanId}-01`);
      expect(span.attributes["taskframe.attempt"]).toBe(1);
    }
    const bad = spans.find((s) => s.name === "task bad")!;
    expect(bad.attributes["taskframe.state"]).toBe("FAILED");
    expect(bad.status?.code).toBe(2); // ERROR
    expect(spans.find((s) => s.name === "task ok")!.status).toBeUndefined();
    // both attempts hang off the same run root
    expect(new Set(spans.map((s) => s.parent?.spanId)).size).toBe(1);
  });
});
