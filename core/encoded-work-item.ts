import { toBinary } from "@bufbuild/protobuf";
import { type WorkItem, WorkItemSchema } from "./gen/taskframe/v1/messages_pb.js";

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
