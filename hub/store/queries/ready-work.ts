import type { WorkItem } from "../../../core/gen/taskframe/v1/messages_pb.js";

/** A task attempt that became ready in a committed transaction and must be published. */
export interface ReadyWork {
  pool: string;
  item: WorkItem;
  /** Its outbox row, deleted once the item is published. */
  outboxId?: number;
}
