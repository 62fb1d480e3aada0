import type { CancelNotice } from "../core/gen/taskframe/v1/messages_pb.js";
import type { Delivery } from "./attempt-report.js";

/**
 * Which deliveries a cancel notice is about: those of its runs, and the tasks
 * it names (any attempt or lease, unless the notice names one).
 */
export function cancelNoticeMatcher(notice: CancelNotice, host: string): (delivery: Delivery) => boolean {
  const targets = new Map(notice.tasks.map((t) => [t.taskId, t]));
  return (delivery) => {
    if (notice.runIds.includes(delivery.item.runId)) return true;
    const target = targets.get(delivery.item.taskId);
    return (
      target !== undefined &&
      (target.attempt === 0 || target.attempt === delivery.item.attempt) &&
      (target.leaseEpoch === 0n || Number(target.leaseEpoch) === delivery.epoch) &&
      (target.host === "" || target.host === host)
    );
  };
}
