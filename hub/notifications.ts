import { EventEmitter } from "node:events";
import type { RunFinished, TaskChange } from "./store/queries/task-change.js";

/** What the hub announces after each committed change; watchers (WatchRun, log follow) listen. */
export type HubEventMap = {
  "tasks:changed": { changes: readonly TaskChange[] };
  "runs:finished": { runs: readonly RunFinished[] };
  "logs:recorded": { taskIds: ReadonlySet<string> };
};

export class HubNotifications {
  #emitter = new EventEmitter().setMaxListeners(0);

  on<K extends keyof HubEventMap>(event: K, listener: (payload: HubEventMap[K]) => void): () => void {
    this.#emitter.on(event, listener);
    return () => this.#emitter.off(event, listener);
  }

  emit<K extends keyof HubEventMap>(event: K, payload: HubEventMap[K]): void {
    this.#emitter.emit(event, payload);
  }
}
