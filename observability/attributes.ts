/**
 * Span, event and metric attribute names, in one place. Messaging attributes follow the OpenTelemetry
 * messaging conventions for RabbitMQ; `warren.*` ones are ours. No attribute ever carries a payload,
 * an actor's context or a credential.
 *
 * @example
 * ```ts
 * span.setAttribute(Attr.actor, 'scorer'); // 'warren.actor'
 * ```
 */
export const Attr = {
  messagingSystem: 'messaging.system',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  destination: 'messaging.destination.name',
  routingKey: 'messaging.rabbitmq.destination.routing_key',
  messageId: 'messaging.message.id',
  conversationId: 'messaging.message.conversation_id',
  bodySize: 'messaging.message.body.size',
  consumerGroup: 'messaging.consumer.group.name',
  actor: 'warren.actor',
  actorKey: 'warren.actor.key',
  hops: 'warren.hops',
  generation: 'warren.generation',
  outcome: 'warren.outcome',
  parkReason: 'warren.park.reason',
  attempt: 'warren.attempt',
  feedback: 'warren.feedback',
  dbSystem: 'db.system.name',
  dbOperation: 'db.operation.name',
  dbOutcome: 'warren.commit.status',
  errorType: 'error.type',
  stateFrom: 'xstate.state.from',
  stateTo: 'xstate.state.to',
  eventType: 'xstate.event.type',
  /** The worker process that ran a message (a Python or R processor's pool). */
  workerPid: 'warren.worker.pid',
  /** Items in the worker call that carried the message. */
  batchSize: 'warren.batch.size',
  /** How long the message waited in the pool's queue for a worker, in ms. */
  queueWait: 'warren.queue.wait_ms',
} as const;

export const RABBITMQ = 'rabbitmq';

/**
 * The name of the span event recording one XState transition.
 *
 * @example
 * ```ts
 * const transitions = span.events.filter((e) => e.name === TRANSITION_EVENT);
 * ```
 */
export const TRANSITION_EVENT = 'xstate.transition';
