import type { Publication } from '../core/envelope.ts';
import type { Transport } from '../transport/transport.ts';

/**
 * A transport that confirms a publish before it returns (the embedded bus: the message is in its
 * queues): the host publishes through it without a promise per output.
 */
export interface ImmediatePublisher {
  /** False when `publish` does more than `publishNow` (a subclass's): then the host keeps the promise. */
  readonly confirmsAtOnce: boolean;
  publishNow(message: Publication, options?: { readonly mandatory?: boolean }): void;
}

/**
 * The transport's immediate publish, when it has one (the embedded bus), else undefined (RabbitMQ
 * confirms later). A host takes its synchronous path only with one.
 *
 * @example
 * ```ts
 * const now = immediatePublisher(deps.transport);
 * if (now) now.publishNow(output, { mandatory: true });
 * ```
 */
export function immediatePublisher(transport: Transport): ImmediatePublisher | undefined {
  const candidate = transport as Transport & Partial<ImmediatePublisher>;
  return typeof candidate.publishNow === 'function' && candidate.confirmsAtOnce === true
    ? (candidate as ImmediatePublisher)
    : undefined;
}

/**
 * A value now, or a promise of it: what each step of the synchronous path returns, so that a step
 * which must wait (an async schema, a machine with an invoked actor still running) hands a promise to
 * the rest of the path, and one that need not wait costs no promise at all.
 */
export type Now<T> = T | Promise<T>;

/**
 * `then` for a `Now`: runs `next` at once on a value, after the promise otherwise.
 *
 * @example
 * ```ts
 * const settlement = andThen(decodeNow(delivery, plan, topology), (decoded) => run(decoded));
 * ```
 */
export function andThen<T, U>(value: Now<T>, next: (value: T) => Now<U>): Now<U> {
  return value instanceof Promise ? value.then(next) : next(value);
}
