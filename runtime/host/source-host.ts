import { randomBytes } from 'node:crypto';
import type { EventObject } from 'xstate';
import { publishTraced, spanContextOf } from '../../observability/tracing.ts';
import type { MessageSchemas, SourceDefinition, SourceItem, SourceOutcome } from '../define.ts';
import type { OutgoingMessage } from '../envelope.ts';
import { describeError } from '../errors.ts';
import type { ActorPlan } from '../topology/plan.ts';
import type { HostDeps } from './consumer-host.ts';
import { type Instance, settle, startInstance } from './instance.ts';
import { toOutgoing } from './outputs.ts';

/**
 * Runs a source: pulls items from its `read()` only as fast as the broker confirms what it already
 * published (at most `sourceWindow` unconfirmed), maps each through the source machine when it has one,
 * validates every output against the declared schema, and publishes it. An item that fails validation is
 * parked in the source's dead-letter queue with its reason; reading goes on.
 */
export class SourceHost {
  readonly #plan: ActorPlan;
  readonly #definition: SourceDefinition;
  readonly #deps: HostDeps;
  readonly #abort = new AbortController();
  readonly #runId = randomBytes(6).toString('base64url');
  #instance: Instance | undefined;
  #done: Promise<void> | undefined;
  #published = 0;

  constructor(plan: ActorPlan, deps: HostDeps) {
    if (plan.definition.kind !== 'source') throw new TypeError(`${plan.name} is not a source`);
    this.#plan = plan;
    this.#definition = plan.definition;
    this.#deps = deps;
  }

  /** Messages published and confirmed so far. */
  get published(): number {
    return this.#published;
  }

  start(): Promise<void> {
    this.#done ??= this.#run().catch((err: unknown) => {
      this.#deps.logger.error('source failed', { actor: this.#plan.name, error: describeError(err) });
      throw err;
    });
    return this.#done;
  }

  /** Resolves when `read()` is exhausted and everything it produced is confirmed. */
  get done(): Promise<void> {
    return this.#done ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#done?.catch(() => undefined);
    this.#instance?.actor.stop();
  }

  async #run(): Promise<void> {
    const machine = this.#definition.machine;
    if (machine) this.#instance = startInstance(machine, undefined, [], 0);
    const pending = new Set<Promise<void>>();
    let failure: unknown;
    let seq = 0;
    const logger = {
      info: (message: string, data?: Record<string, unknown>) =>
        this.#deps.logger.info(message, { actor: this.#plan.name, ...data }),
      warn: (message: string, data?: Record<string, unknown>) =>
        this.#deps.logger.warn(message, { actor: this.#plan.name, ...data }),
    };
    for await (const item of this.#definition.read({ signal: this.#abort.signal, logger })) {
      // Without a machine, read() yields shaped items, which may carry an id, a receipt, a traceparent.
      const shaped = machine ? undefined : (item as SourceItem);
      if (this.#abort.signal.aborted) {
        this.#tell(shaped?.receipt, { status: 'failed', error: new Error('the source stopped') });
        break;
      }
      const index = seq++;
      const inputId = `${this.#plan.name}:${this.#runId}:${index}`;
      const emitted = await this.#emit(item);
      const explicitId = shaped?.id;
      const createdAt = Date.now();
      const outputs = toOutgoing(
        this.#deps.topology,
        this.#plan,
        emitted,
        { inputId, flowId: '', hops: 0, generation: 0, createdAt },
        (i) =>
          explicitId !== undefined && emitted.length === 1
            ? explicitId
            : i === 0
              ? inputId
              : `${inputId}.${i}`,
      ).map(startFlow);
      for (const output of outputs) {
        const valid = await this.#validate(output);
        const id = output.properties.messageId;
        const p: Promise<void> = (
          valid === true ? this.#publish(output, shaped?.traceparent) : this.#park(output, valid)
        )
          .then(
            () =>
              this.#tell(
                shaped?.receipt,
                valid === true ? { status: 'published', id } : { status: 'parked', id, reason: valid },
              ),
            (err: unknown) => {
              this.#tell(shaped?.receipt, { status: 'failed', error: err });
              failure ??= err;
              this.#abort.abort();
            },
          )
          .finally(() => pending.delete(p));
        pending.add(p);
        // Stopping ends the wait too: a broker that blocks publishers must not keep a stop waiting.
        while (
          !this.#abort.signal.aborted &&
          (pending.size >= this.#deps.sourceWindow || this.#deps.transport.isBlocked())
        ) {
          await Promise.race(pending.size > 0 ? pending : [sleep(100)]);
        }
      }
    }
    await Promise.all(pending);
    if (failure !== undefined) throw failure;
  }

  /** Hand an item's outcome to its receipt; a receipt that throws is logged, never stops the source. */
  #tell(receipt: SourceItem['receipt'], outcome: SourceOutcome): void {
    try {
      receipt?.(outcome);
    } catch (err) {
      this.#deps.logger.warn('a source item receipt threw', {
        actor: this.#plan.name,
        error: describeError(err),
      });
    }
  }

  async #emit(item: unknown): Promise<EventObject[]> {
    const instance = this.#instance;
    if (!instance) {
      const { type, body } = item as SourceItem<MessageSchemas>;
      return [{ type, body } as EventObject];
    }
    instance.emitted = [];
    instance.actor.send({ type: 'warren.input', input: item } as EventObject);
    await settle(instance, this.#deps.settleTimeoutMs);
    const emitted = instance.emitted;
    instance.emitted = [];
    return emitted;
  }

  /** true, or the validation issues. Outside input is untrusted: a source checks what it emits. */
  async #validate(output: OutgoingMessage): Promise<true | string> {
    const schema = (this.#definition.emits as MessageSchemas)[output.properties.type];
    if (!schema) return `undeclared type ${output.properties.type}`;
    let result = schema['~standard'].validate(JSON.parse(output.body));
    if (result instanceof Promise) result = await result;
    return result.issues ? result.issues.map((i) => i.message).join('; ') : true;
  }

  /**
   * Publish one item's message; with tracing on, its producer span is the root of the flow's trace,
   * linked to where the item came from when it says (`traceparent`).
   */
  async #publish(output: OutgoingMessage, from?: string): Promise<void> {
    const publish = (message: OutgoingMessage) => this.#deps.transport.publish(message, { mandatory: true });
    if (!this.#deps.tracing) await publish(output);
    else {
      const link = from === undefined ? undefined : spanContextOf(from);
      await publishTraced(this.#plan.name, output, publish, link ? { links: [link] } : {});
    }
    this.#published++;
    this.#deps.stats.add(this.#plan.name, 'emitted');
  }

  async #park(output: OutgoingMessage, issues: string): Promise<void> {
    this.#deps.stats.add(this.#plan.name, 'parked');
    this.#deps.logger.warn('source item parked', {
      actor: this.#plan.name,
      messageId: output.properties.messageId,
      issues,
    });
    await this.#deps.transport.publish(
      {
        ...output,
        exchange: '',
        routingKey: this.#plan.deadQueue,
        properties: {
          ...output.properties,
          headers: {
            ...output.properties.headers,
            'x-warren-reason': 'schema',
            'x-warren-error': String(issues).slice(0, 500),
          },
        },
      },
      { mandatory: true },
    );
  }
}

/** A source message starts its own flow: the flow id is the message id. */
function startFlow(message: OutgoingMessage): OutgoingMessage {
  return {
    ...message,
    properties: {
      ...message.properties,
      headers: { ...message.properties.headers, 'warren-flow': message.properties.messageId },
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
