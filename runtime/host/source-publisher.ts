import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { EventObject } from 'xstate';
import type { MessageSchemas } from '../core/define.ts';
import type { OutgoingMessage } from '../core/envelope.ts';
import type { ParkReason } from '../core/errors.ts';
import { renderIssues } from '../core/schema-issues.ts';
import type { ActorPlan } from '../topology/plan.ts';
import type { HostDeps } from './host-deps.ts';
import { type ImmediatePublisher, immediatePublisher, type Now } from './immediate.ts';
import { publishObserved } from './outbox.ts';
import { toOutgoing } from './outputs.ts';
import { parkedOutput } from './parking.ts';
import { vouches } from './validate-outputs.ts';

/** Why a source record cannot be published: a park reason and the error naming the field. */
export interface Rejection {
  readonly reason: ParkReason;
  readonly error: string;
}

/**
 * The path every source record takes to the bus, shared by a running source and by a replay of its
 * parked records: shape it as a message that starts its own flow, check it against the source's
 * declared schema (outside input is untrusted), then publish it with a mandatory, confirmed publish,
 * or park it with the field that was wrong.
 */
export class SourcePublisher {
  readonly #plan: ActorPlan;
  readonly #deps: HostDeps;

  readonly #immediate: ImmediatePublisher | undefined;

  constructor(plan: ActorPlan, deps: HostDeps) {
    this.#plan = plan;
    this.#deps = deps;
    this.#immediate = immediatePublisher(deps.transport);
  }

  /**
   * The messages for what one item emitted: ids from `inputId` (or the item's own id when it emitted
   * one message), each the start of its own flow.
   */
  shape(
    emitted: readonly EventObject[],
    inputId: string,
    explicitId: string | undefined,
    createdAt: number,
  ): OutgoingMessage[] {
    return toOutgoing(
      this.#deps.topology,
      this.#plan,
      emitted,
      { inputId, flowId: '', hops: 0, generation: 0, createdAt },
      (i) =>
        explicitId !== undefined && emitted.length === 1 ? explicitId : i === 0 ? inputId : `${inputId}.${i}`,
      true,
    );
  }

  /** undefined when the message fits its declared schema, else why not, naming each wrong field. */
  async check(output: OutgoingMessage): Promise<Rejection | undefined> {
    return this.checkNow(output);
  }

  /**
   * `check` without a promise when the schema validates synchronously. With `body`, the value the
   * message was made of, as read() yielded it: when the schema vouches for it (it knows it built it of
   * parts it checked, as `batchOf` does for a file source's batches), it is not checked again.
   */
  checkNow(output: OutgoingMessage, body?: unknown): Now<Rejection | undefined> {
    const type = output.properties.type;
    const emits = this.#plan.definition.emits as MessageSchemas;
    const schema = Object.hasOwn(emits, type) ? emits[type] : undefined;
    if (!schema) return { reason: 'unknown-type', error: `${this.#plan.name} does not declare ${type}` };
    if (body !== undefined && vouches(schema, body)) return undefined;
    // The value parsed here is what a consumer would parse: it goes with the message (see `value`).
    const value: unknown = JSON.parse(output.body);
    const checked = (issues: readonly StandardSchemaV1.Issue[] | undefined): Rejection | undefined => {
      if (issues) return { reason: 'schema', error: `${type} fails its schema: ${renderIssues(issues)}` };
      output.value = value;
      return undefined;
    };
    const result = schema['~standard'].validate(value);
    return result instanceof Promise ? result.then((r) => checked(r.issues)) : checked(result.issues);
  }

  /**
   * Whether `publishNow` can publish: the transport confirms before it returns (the embedded bus) and
   * nothing traces (a traced publish has its producer span around it).
   */
  get immediate(): boolean {
    return this.#immediate !== undefined && !this.#deps.observer.traces;
  }

  /** `publish` on the embedded bus with tracing off: confirmed when it returns; throws what `publish` rejects with. */
  publishNow(output: OutgoingMessage): void {
    if (!this.#immediate) throw new TypeError('publishNow needs a transport that confirms at once');
    this.#immediate.publishNow(output, { mandatory: true });
    this.#deps.stats.add(this.#plan.name, 'emitted');
  }

  /**
   * Publish one message; with tracing on, its producer span is the root of the flow's trace, linked to
   * where the item came from when it says (`traceparent`).
   */
  async publish(output: OutgoingMessage, from?: string): Promise<void> {
    const { observer } = this.#deps;
    if (!observer.traces) await this.#deps.transport.publish(output, { mandatory: true });
    else {
      const link = from === undefined ? undefined : observer.linkTo(from);
      await publishObserved(this.#deps, this.#plan.name, output, {
        feedback: false,
        links: link ? [link] : undefined,
      });
    }
    this.#deps.stats.add(this.#plan.name, 'emitted');
  }

  /** Park a message that was never published, with the parking headers every dead letter carries. */
  async park(output: OutgoingMessage, rejection: Rejection, attempts = 1): Promise<void> {
    this.#deps.stats.parked(this.#plan.name, rejection.reason);
    this.#deps.logger.warn('source item parked', {
      actor: this.#plan.name,
      messageId: output.properties.messageId,
      reason: rejection.reason,
      error: rejection.error,
    });
    await this.#deps.transport.publish(
      parkedOutput(output, this.#plan.deadQueue, {
        ...rejection,
        attempts,
        parkedFrom: output.exchange,
        parkedAt: this.#deps.clock.now(),
      }),
      { mandatory: true },
    );
  }
}
