import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { type WorkItem, WorkItemSchema } from "./gen/taskframe/v1/messages_pb.js";
import type { TaskSpec } from "./gen/taskframe/v1/spec_pb.js";

const cache = new WeakMap<WorkItem, Uint8Array>();

/**
 * A work item's protobuf bytes, encoded once: the hub writes them to the
 * outbox and then publishes them, and encoding is a real share of its CPU at
 * thousands of tasks a second. Items are not modified after they are made.
 */
export function encodedWorkItem(item: WorkItem): Uint8Array {
  let bytes = cache.get(item);
  if (!bytes) {
    bytes = toBinary(WorkItemSchema, item);
    cache.set(item, bytes);
  }
  return bytes;
}

const SPEC_FIELD = WorkItemSchema.field.spec!.number;

/**
 * A work item whose spec is already encoded (the hub has the bytes it stores
 * in the task row): its encoding is the rest of the item followed by the spec
 * as one length-delimited field (protobuf decodes concatenated fields as one
 * message), without encoding the spec a second time.
 */
export function workItemWithEncodedSpec(
  fields: Pick<WorkItem, "taskId" | "runId" | "attempt" | "dispatch">,
  spec: TaskSpec,
  specBytes: Uint8Array,
): WorkItem {
  const item = create(WorkItemSchema, fields);
  const head = toBinary(WorkItemSchema, item);
  const tail = new BinaryWriter().tag(SPEC_FIELD, WireType.LengthDelimited).bytes(specBytes).finish();
  const bytes = new Uint8Array(head.length + tail.length);
  bytes.set(head, 0);
  bytes.set(tail, head.length);
  item.spec = spec;
  cache.set(item, bytes);
  return item;
}
