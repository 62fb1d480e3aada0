export { connectNats, type NatsConnectOptions } from "./connect.js";
export {
  type EventStreamOptions,
  ensureEventStream,
  JetStreamEventSink,
  type JetStreamEventSinkOptions,
  JetStreamEventSource,
  type JetStreamEventSourceOptions,
} from "./jetstream-event-bus.js";
export { JetStreamWorkQueue, type JetStreamWorkQueueOptions } from "./jetstream-work-queue.js";
export { DEFAULT_NAMESPACE, NatsNames, validatePool } from "./names.js";
export { NatsControlBus } from "./nats-control-bus.js";
export {
  type AckSubjectInfo,
  ConsumerUnavailableError,
  keepWorking,
  PullConsumer,
  type PullConsumerOptions,
  type PulledMessage,
  PullUnansweredError,
  parseAckSubject,
} from "./pull.js";
