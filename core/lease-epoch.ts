/*
 * The lease epoch fences results: a state transition counts only if it
 * carries the task's current (attempt, epoch). It is derived without a round
 * trip from two numbers the sidecar already has:
 *   - dispatch: how many times the hub published this attempt (a re-publish
 *     after the queue lost a message bumps it), carried in the WorkItem;
 *   - delivery: the queue's delivery count for that publication (a redelivery
 *     after a lease expired bumps it).
 * Epochs of later publications always exceed those of earlier ones.
 */
const DELIVERIES_PER_DISPATCH = 2 ** 20;

export function leaseEpoch(dispatch: number, delivery: number): number {
  if (delivery < 1 || delivery >= DELIVERIES_PER_DISPATCH) {
    throw new RangeError(`delivery count ${delivery} is out of range 1..${DELIVERIES_PER_DISPATCH - 1}`);
  }
  return dispatch * DELIVERIES_PER_DISPATCH + delivery;
}

export function describeLeaseEpoch(epoch: number): string {
  const dispatch = Math.floor(epoch / DELIVERIES_PER_DISPATCH);
  const delivery = epoch % DELIVERIES_PER_DISPATCH;
  return `dispatch ${dispatch}, delivery ${delivery}`;
}
