import { create, toBinary } from "@bufbuild/protobuf";
import {
  type EventBatch,
  EventBatchSchema,
  type LogChunk,
  LogChunkSchema,
  type StateTransition,
  StateTransitionSchema,
} from "../gen/taskframe/v1/messages_pb.js";

/**
 * Encodes an EventBatch as one or more messages of at most `maxBytes` each.
 * When it must be cut, log chunks go first, then transitions, each list in
 * order: a task's output is recorded no later than the transition that ends it.
 */
export function splitEventBatch(batch: EventBatch, maxBytes: number): Uint8Array[] {
  const whole = toBinary(EventBatchSchema, batch);
  if (whole.length <= maxBytes) return [whole];

  const parts: Uint8Array[] = [];
  let logs: LogChunk[] = [];
  let transitions: StateTransition[] = [];
  let size = 0;
  const cut = () => {
    if (logs.length === 0 && transitions.length === 0) return;
    parts.push(toBinary(EventBatchSchema, create(EventBatchSchema, { logs, transitions })));
    logs = [];
    transitions = [];
    size = 0;
  };
  const add = (encodedBytes: number, what: () => string, push: () => void) => {
    // a repeated field: 1 byte of tag, the length as a varint, the message
    const fieldBytes = 1 + varintBytes(encodedBytes) + encodedBytes;
    if (fieldBytes > maxBytes) {
      throw new Error(
        `${what()} is ${fieldBytes} bytes, more than the ${maxBytes} bytes one NATS message may carry`,
      );
    }
    if (size + fieldBytes > maxBytes) cut();
    push();
    size += fieldBytes;
  };
  for (const log of batch.logs) {
    add(
      toBinary(LogChunkSchema, log).length,
      () => `log chunk ${log.seq} of task ${log.taskId}`,
      () => logs.push(log),
    );
  }
  for (const transition of batch.transitions) {
    add(
      toBinary(StateTransitionSchema, transition).length,
      () => `the transition of task ${transition.taskId} (attempt ${transition.attempt})`,
      () => transitions.push(transition),
    );
  }
  cut();
  return parts;
}

function varintBytes(value: number): number {
  let bytes = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) bytes += 1;
  return bytes;
}
