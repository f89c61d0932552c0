import { randomBytes } from 'node:crypto';
import type { EventObject } from 'xstate';
import { sleep } from '../core/clock.ts';
import type {
  MessageSchemas,
  SourceDefinition,
  SourceItem,
  SourceLedger,
  SourceOutcome,
} from '../core/define.ts';
import { describeError, WarrenError } from '../core/errors.ts';
import { afterFailure, hasRecovered } from '../policy/restart.ts';
import type { ActorPlan } from '../topology/plan.ts';
import type { HostDeps } from './consumer-host.ts';
import { type Instance, settle, startInstance } from './instance.ts';
import { type Rejection, SourcePublisher } from './source-publisher.ts';

/**
 * How long a source publishing to the embedded bus runs before it lets the event loop turn: each
 * publish there is synchronous, so a source whose input is all ready would otherwise hold the loop
 * until the bus blocked it.
 */
const TURN_EVERY_MS = 5;

/**
 * Runs a source: pulls items from its `read()` only as fast as the broker confirms what it already
 * published (at most `sourceWindow` unconfirmed), maps each through the source machine when it has one,
 * validates every output against the declared schema, and publishes it. An item that fails validation is
 * parked in the source's dead-letter queue with its reason; reading goes on. A `read()` that throws is
 * called again after a backoff when the source is restartable; otherwise, or once its restarts run
 * out, the source has failed: `done` rejects with `WARREN_SOURCE_FAILED`.
 */
export class SourceHost {
  readonly #plan: ActorPlan;
  readonly #definition: SourceDefinition;
  readonly #deps: HostDeps;
  readonly #publisher: SourcePublisher;
  /** Aborted by `stop()`: ends the current read and any backoff wait. */
  readonly #stopped = new AbortController();
  #done: Promise<void> | undefined;
  #published = 0;
  /** The state store's lease ledger, scoped to this source's name. */
  readonly #ledger: SourceLedger;

  constructor(plan: ActorPlan, deps: HostDeps) {
    if (plan.definition.kind !== 'source') throw new TypeError(`${plan.name} is not a source`);
    this.#plan = plan;
    this.#definition = plan.definition;
    this.#deps = deps;
    this.#publisher = new SourcePublisher(plan, deps);
    const { store } = deps;
    const scope = plan.name;
    this.#ledger = {
      claim: (itemId, owner, leaseMs) => store.claimItem(scope, itemId, owner, leaseMs),
      renew: (itemId, owner, leaseMs, checkpoint) =>
        store.renewItem(scope, itemId, owner, leaseMs, checkpoint),
      finish: (itemId, owner, ttlMs) => store.finishItem(scope, itemId, owner, ttlMs),
    };
  }

  /** Messages published and confirmed so far. */
  get published(): number {
    return this.#published;
  }

  /** Start reading; the promise is `done`. */
  start(): Promise<void> {
    this.#done ??= this.#supervise();
    return this.#done;
  }

  /**
   * Resolves when `read()` is exhausted and everything it produced is confirmed (or the source was
   * stopped); rejects with a `WARREN_SOURCE_FAILED` error when the source failed for good.
   */
  get done(): Promise<void> {
    return this.#done ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    this.#stopped.abort();
    await this.#done?.catch(() => undefined);
  }

  /** Run `read()` to its end, restarting it after a failure as the source's policy says. */
  async #supervise(): Promise<void> {
    const name = this.#plan.name;
    let failures = 0;
    for (;;) {
      const began = this.#deps.clock.now();
      try {
        await this.#run();
        return;
      } catch (err) {
        // A read that fails because it is being stopped is not a failure of the source.
        if (this.#stopped.signal.aborted) return;
        const policy = this.#plan.restart;
        // A run that had recovered before it failed starts a new row of restarts.
        if (policy && hasRecovered(policy, this.#deps.clock.now() - began)) failures = 0;
        failures++;
        const next = afterFailure(policy, failures);
        if (!next.restart) {
          const restarts = failures - 1;
          const failed = new WarrenError(
            'WARREN_SOURCE_FAILED',
            `source "${name}" failed${restarts > 0 ? ` after ${restarts} restart(s)` : ''}: ${describeError(err)}`,
            { cause: err, data: { actor: name, restarts } },
          );
          this.#deps.logger.error('source failed', { actor: name, error: describeError(err), restarts });
          throw failed;
        }
        this.#deps.logger.warn('source failed; restarting it', {
          actor: name,
          error: describeError(err),
          restart: failures,
          delayMs: next.delayMs,
        });
        await sleep(this.#deps.clock, next.delayMs, this.#stopped.signal);
        if (this.#stopped.signal.aborted) return;
      }
    }
  }

  /** One run of `read()`, with a fresh machine and fresh message ids (a restart may yield new input). */
  async #run(): Promise<void> {
    const runId = randomBytes(6).toString('base64url');
    const machine = this.#definition.machine;
    const instance = machine ? startInstance(machine, undefined, [], 0) : undefined;
    // Aborted when publishing fails (the run is over) or when the source is stopped.
    const run = new AbortController();
    const signal = AbortSignal.any([this.#stopped.signal, run.signal]);
    const pending = new Set<Promise<void>>();
    let failure: unknown;
    let seq = 0;
    let lastTurn = performance.now();
    // The embedded bus with tracing off: each output is in its queues when publishNow returns.
    const immediate = this.#publisher.immediate;
    const logger = {
      info: (message: string, data?: Record<string, unknown>) =>
        this.#deps.logger.info(message, { actor: this.#plan.name, ...data }),
      warn: (message: string, data?: Record<string, unknown>) =>
        this.#deps.logger.warn(message, { actor: this.#plan.name, ...data }),
    };
    try {
      for await (const item of this.#definition.read({ signal, logger, ledger: this.#ledger })) {
        // Without a machine, read() yields shaped items, which may carry an id, a receipt, a traceparent.
        const shaped = machine ? undefined : (item as SourceItem);
        if (signal.aborted) {
          this.#tell(shaped?.receipt, { status: 'failed', error: new Error('the source stopped') });
          break;
        }
        const inputId = `${this.#plan.name}:${runId}:${seq++}`;
        const emitted = instance ? await this.#emit(instance, item) : plainItem(item);
        const outputs = this.#publisher.shape(emitted, inputId, shaped?.id, this.#deps.clock.now());
        for (const output of outputs) {
          let rejected: Rejection | undefined = shaped?.park;
          if (!rejected) {
            // Without a machine the one output is the item's body, as read() yielded it.
            const checking = this.#publisher.checkNow(output, shaped?.body);
            rejected = checking instanceof Promise ? await checking : checking;
          }
          const id = output.properties.messageId;
          if (!rejected && immediate) {
            // The embedded bus has it in its queues (confirmed) when publishNow returns: nothing pends.
            try {
              this.#publisher.publishNow(output);
              // Nothing here waits for I/O: a turn of the event loop now and then lets the rest run
              // (the consumers' dispatch, worker replies, timers, HTTP) while input is plentiful.
              if (performance.now() - lastTurn > TURN_EVERY_MS) {
                await new Promise((resolve) => setImmediate(resolve));
                lastTurn = performance.now();
              }
              this.#published++;
              this.#tell(shaped?.receipt, { status: 'published', id });
            } catch (err) {
              this.#tell(shaped?.receipt, { status: 'failed', error: err });
              failure ??= err;
              run.abort();
            }
          } else {
            const p: Promise<void> = (
              rejected ? this.#publisher.park(output, rejected) : this.#publish(output, shaped?.traceparent)
            )
              .then(
                () =>
                  this.#tell(
                    shaped?.receipt,
                    rejected ? { status: 'parked', id, reason: rejected.error } : { status: 'published', id },
                  ),
                (err: unknown) => {
                  this.#tell(shaped?.receipt, { status: 'failed', error: err });
                  failure ??= err;
                  run.abort();
                },
              )
              .finally(() => pending.delete(p));
            pending.add(p);
          }
          // Stopping ends the wait too: a broker that blocks publishers must not keep a stop waiting.
          while (
            !signal.aborted &&
            (pending.size >= this.#deps.sourceWindow || this.#deps.transport.isBlocked())
          ) {
            await Promise.race(pending.size > 0 ? pending : [sleep(this.#deps.clock, 100)]);
          }
        }
      }
    } finally {
      // What was handed to the bus is waited for, whatever ended the run.
      await Promise.all(pending);
      instance?.actor.stop();
    }
    if (failure !== undefined) throw failure;
  }

  async #publish(output: Parameters<SourcePublisher['publish']>[0], from?: string): Promise<void> {
    await this.#publisher.publish(output, from);
    this.#published++;
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

  async #emit(instance: Instance, item: unknown): Promise<EventObject[]> {
    instance.emitted = [];
    instance.actor.send({ type: 'warren.input', input: item } as EventObject);
    await settle(instance, this.#deps.settleTimeoutMs);
    const emitted = instance.emitted;
    instance.emitted = [];
    return emitted;
  }
}

/** What a source without a machine emits for one item it read: the item's own type and body. */
function plainItem(item: unknown): EventObject[] {
  const { type, body } = item as SourceItem<MessageSchemas>;
  return [{ type, body } as EventObject];
}
