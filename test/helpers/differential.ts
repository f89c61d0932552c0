/**
 * Differential testing of a router against the real RabbitMQ. fast-check generates Rascal-shaped
 * topologies (every exchange type, internal exchanges, alternate exchanges, exchange-to-exchange
 * bindings with cycles, headers bindings in all four `x-match` modes) with a few publications each;
 * every case is declared in a throwaway vhost, published with `mandatory` on a confirm channel, and
 * what each queue received (and whether the broker returned the message) is compared with the router.
 *
 * Isolation is a vhost of its own per test file, made and removed with `rabbitmqctl` (about 0.4 s a
 * call, paid twice per file), rather than name prefixes in '/': nothing can leak into other tests,
 * and names stay short and fixed (`x0`.., `q0`..), so a shrunk counterexample reads like a
 * hand-written one. Cases run one after another on one connection; each first undoes the last.
 */
import { execFile } from 'node:child_process';
import { isDeepStrictEqual, promisify } from 'node:util';
import amqplib, { type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';
import fc from 'fast-check';
import {
  type ExchangeType,
  type Publication,
  PublishRefusedError,
  type RascalVhostTopology,
  type RouteResult,
} from '../../runtime/routing/index.ts';
import { RABBITMQ_URL, uniquePrefix } from './services.ts';

/** The function under test: the real `route`, or a deliberately broken one. */
export type RouteFunction = (topology: RascalVhostTopology, publication: Publication) => RouteResult;

/** An exchange as the generator writes it: exactly the options Rascal hands to amqplib. */
export type GeneratedExchange = {
  readonly type: ExchangeType;
  readonly options?: {
    readonly internal?: boolean;
    readonly alternateExchange?: string;
    readonly arguments?: Readonly<Record<string, unknown>>;
  };
};

/** One binding with one explicit key; `options` is the binding's argument table. */
export type GeneratedBinding = {
  readonly source: string;
  readonly destination: string;
  readonly destinationType: 'queue' | 'exchange';
  readonly bindingKey: string;
  readonly options?: Readonly<Record<string, unknown>>;
};

export type GeneratedTopology = {
  readonly exchanges: Readonly<Record<string, GeneratedExchange>>;
  readonly queues: readonly string[];
  readonly bindings: readonly GeneratedBinding[];
};

/** One generated case: a topology and the publications made against it, in order. */
export interface DifferentialCase {
  readonly topology: GeneratedTopology;
  readonly publications: readonly Publication[];
}

/** What happened to one publication, in a form both sides can produce and compare. */
export type Outcome =
  | { readonly refused: string }
  | { readonly delivered: Readonly<Record<string, number>>; readonly returned: boolean };

const EXCHANGES = ['x0', 'x1', 'x2', 'x3'] as const;
const QUEUES = ['q0', 'q1', 'q2'] as const;
/** Every vhost has these; bindings may start at them but never end at them, so cleanup stays simple. */
const PREDECLARED = ['amq.direct', 'amq.fanout', 'amq.topic', 'amq.headers', 'amq.match'] as const;
/** An exchange name nothing declares: publishing to it is refused, as an alternate it is skipped. */
const MISSING = 'nope';

const join = (words: readonly string[]): string => words.join('.');
/** `undefined` (where shrinking goes) except one time in `oneIn`. */
const sometimes = <T>(arbitrary: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: oneIn - 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary });

/** Tiny alphabets, so that empty words, multi-word matches and collisions between keys are common. */
const bindingKey = fc.array(fc.constantFrom('', 'a', 'b', '*', '#'), { maxLength: 4 }).map(join);
/** A routing key's own `*` and `#` are plain words; they are kept rare, as they match little. */
const keyWord = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('', 'a', 'b') },
  { weight: 1, arbitrary: fc.constantFrom('*', '#') },
);
const routingKey = fc.oneof(
  { weight: 6, arbitrary: fc.array(keyWord, { maxLength: 4 }).map(join) },
  { weight: 1, arbitrary: fc.constantFrom(...QUEUES) },
);
const headerName = fc.constantFrom('h1', 'h2', 'x-h');
const headerValue = fc.constantFrom<unknown>(1, 'a', '1', 2, 1.5, '', true, false, null);
const headerFields = fc.dictionary(headerName, headerValue, { maxKeys: 3, noNullPrototype: true });
const bindingArguments = fc
  .record({
    mode: fc.constantFrom(undefined, 'all', 'any', 'all-with-x', 'any-with-x'),
    fields: headerFields,
  })
  .map(({ mode, fields }) => (mode === undefined ? { ...fields } : { 'x-match': mode, ...fields }));

/** Own exchanges are indices, taken modulo how many were generated, so the list can shrink freely. */
const ownExchange = fc.nat({ max: EXCHANGES.length - 1 });

const exchangePlan = fc.record({
  type: fc.constantFrom<ExchangeType>('direct', 'fanout', 'topic', 'headers'),
  internal: fc.oneof(
    { weight: 12, arbitrary: fc.constant(false) },
    { weight: 1, arbitrary: fc.constant(true) },
  ),
  alternate: sometimes(fc.oneof(ownExchange, fc.constantFrom('amq.fanout', MISSING)), 3),
  alternateAsArgument: fc.boolean(),
});

const bindingPlan = fc.record({
  source: fc.oneof(
    { weight: 8, arbitrary: ownExchange },
    { weight: 1, arbitrary: fc.constantFrom(...PREDECLARED) },
  ),
  destination: fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...QUEUES) },
    { weight: 2, arbitrary: ownExchange },
  ),
  key: bindingKey,
  args: sometimes(bindingArguments, 2),
});

/** CC/BCC: usually an array of extra keys (non-strings are ignored), rarely a string (refused). */
const senderSelected = fc.record({
  name: fc.constantFrom('CC', 'BCC'),
  value: fc.oneof(
    { weight: 5, arbitrary: fc.array(fc.oneof(routingKey, fc.constant<unknown>(1)), { maxLength: 2 }) },
    { weight: 1, arbitrary: routingKey },
  ),
});

const publicationPlan = fc.record({
  exchange: fc.oneof(
    { weight: 12, arbitrary: ownExchange },
    { weight: 2, arbitrary: fc.constantFrom('', ...PREDECLARED, 'amq.rabbitmq.trace', MISSING) },
  ),
  routingKey,
  headers: sometimes(headerFields, 2),
  senderSelected: sometimes(senderSelected, 6),
});

/**
 * Random cases: one to four exchanges, three queues, up to ten bindings, up to ten publications (the
 * property skips cases without any).
 *
 * @example
 * ```ts
 * fc.sample(differentialCase, 1)[0]?.topology.exchanges; // { x0: { type: 'topic' }, ... }
 * ```
 */
export const differentialCase: fc.Arbitrary<DifferentialCase> = fc
  // Publications come first because fast-check shrinks fields in order, and dropping publications
  // costs the broker nothing (see DifferentialLab.observe) while making every later attempt cheaper.
  .record({
    // No minLength: with one, fast-check cannot drop the last publication when the first one fails;
    // the property skips empty cases instead, so they do not count as runs.
    publications: fc.array(publicationPlan, { maxLength: 10 }),
    bindings: fc.array(bindingPlan, { maxLength: 10 }),
    exchanges: fc.array(exchangePlan, { minLength: 1, maxLength: EXCHANGES.length }),
  })
  .map(({ publications, bindings, exchanges }): DifferentialCase => {
    const own = (i: number): string => EXCHANGES[i % exchanges.length] as string;
    const named = (x: number | string): string => (typeof x === 'number' ? own(x) : x);
    return {
      topology: {
        exchanges: Object.fromEntries(
          exchanges.map((x, i): [string, GeneratedExchange] => {
            const ae = x.alternate === undefined ? undefined : named(x.alternate);
            const options = {
              ...(x.internal ? { internal: true } : {}),
              ...(ae === undefined
                ? {}
                : x.alternateAsArgument
                  ? { arguments: { 'alternate-exchange': ae } }
                  : { alternateExchange: ae }),
            };
            return [own(i), Object.keys(options).length === 0 ? { type: x.type } : { type: x.type, options }];
          }),
        ),
        queues: [...QUEUES],
        bindings: bindings.map((b) => ({
          source: named(b.source),
          destination: named(b.destination),
          destinationType: typeof b.destination === 'number' ? 'exchange' : 'queue',
          bindingKey: b.key,
          ...(b.args === undefined ? {} : { options: b.args }),
        })),
      },
      publications: publications.map((p) => {
        const headers =
          p.headers === undefined && p.senderSelected === undefined
            ? undefined
            : {
                ...p.headers,
                ...(p.senderSelected && { [p.senderSelected.name]: p.senderSelected.value }),
              };
        return {
          exchange: named(p.exchange),
          routingKey: p.routingKey,
          ...(headers === undefined ? {} : { headers }),
        };
      }),
    };
  });

/**
 * Header values of every AMQP field type amqplib can send, chosen to collide: one number as plain,
 * each integer type, float and double; the float 1.1 that is not the double 1.1; fractions an
 * integer type truncates; strings beside Buffers of the same bytes; a lone surrogate beside U+FFFD;
 * empty tables beside empty arrays; a nested table in two orders; arrays whose element types differ.
 */
export const typedHeaderValue: fc.Arbitrary<unknown> = fc.constantFrom<unknown>(
  1,
  { '!': 'byte', value: 1 },
  { '!': 'unsignedshort', value: 1 },
  { '!': 'int', value: 1 },
  { '!': 'long', value: 1 },
  { '!': 'timestamp', value: 1 },
  { '!': 'double', value: 1 },
  { '!': 'float', value: 1 },
  { '!': 'int', value: 1.7 },
  { '!': 'byte', value: -1.7 },
  -1,
  1.1,
  { '!': 'double', value: 1.1 },
  { '!': 'float', value: 1.1 },
  { '!': 'float', value: 1.5 },
  1.5,
  { '!': 'decimal', value: { places: 1, digits: 15 } },
  'a',
  Buffer.from('a'),
  '\uD800',
  '\uFFFD',
  Buffer.from([0xef, 0xbf, 0xbd]),
  true,
  null,
  [],
  {},
  [1],
  [{ '!': 'int', value: 1 }],
  [{ '!': 'double', value: 1 }],
  ['a'],
  [Buffer.from('a')],
  [[]],
  [{}],
  { a: 1 },
  { a: { '!': 'long', value: 1 } },
  { a: 1, b: 'a' },
  { b: 'a', a: 1 },
);

/** Routing and binding key words where a lone surrogate and U+FFFD meet. */
const typedKey = fc.array(fc.constantFrom('a', '\uD800', '\uFFFD', '*', '#'), { maxLength: 2 }).map(join);

/**
 * Cases aimed at how values travel: a headers exchange `x0` whose bindings' arguments and whose
 * publications' headers draw from {@link typedHeaderValue}, beside a direct or topic exchange `x1`
 * whose keys hold lone surrogates and U+FFFD.
 *
 * @example
 * ```ts
 * fc.sample(typedValueCases, 1)[0]?.topology.exchanges; // { x0: { type: 'headers' }, x1: { type: 'topic' } }
 * ```
 */
export const typedValueCases: fc.Arbitrary<DifferentialCase> = fc
  .record({
    publications: fc.array(
      fc.record({
        toHeaders: fc.boolean(),
        routingKey: typedKey,
        headers: fc.dictionary(fc.constantFrom('h1', 'h2'), typedHeaderValue, {
          minKeys: 1,
          maxKeys: 2,
          noNullPrototype: true,
        }),
      }),
      { maxLength: 10 },
    ),
    bindings: fc.array(
      fc.record({
        fromHeaders: fc.boolean(),
        queue: fc.constantFrom(...QUEUES),
        key: typedKey,
        mode: fc.constantFrom('all', 'any'),
        pattern: fc.dictionary(fc.constantFrom('h1', 'h2'), typedHeaderValue, {
          minKeys: 1,
          maxKeys: 2,
          noNullPrototype: true,
        }),
      }),
      { maxLength: 6 },
    ),
    keyed: fc.constantFrom<ExchangeType>('direct', 'topic'),
  })
  .map(
    ({ publications, bindings, keyed }): DifferentialCase => ({
      topology: {
        exchanges: { x0: { type: 'headers' }, x1: { type: keyed } },
        queues: [...QUEUES],
        bindings: bindings.map((b) => ({
          source: b.fromHeaders ? 'x0' : 'x1',
          destination: b.queue,
          destinationType: 'queue',
          bindingKey: b.key,
          ...(b.fromHeaders ? { options: { 'x-match': b.mode, ...b.pattern } } : {}),
        })),
      },
      publications: publications.map((p) => ({
        exchange: p.toHeaders ? 'x0' : 'x1',
        routingKey: p.routingKey,
        headers: p.headers,
      })),
    }),
  );

/** What the router predicts, in the broker's terms: each listed queue gets one copy. */
export function predictedOutcome(router: RouteFunction, c: DifferentialCase, p: Publication): Outcome {
  try {
    const result = router(c.topology, p);
    return {
      delivered: Object.fromEntries(result.queues.map((q) => [q, 1])),
      returned: result.unroutable,
    };
  } catch (err) {
    if (err instanceof PublishRefusedError) return { refused: err.reason };
    throw err;
  }
}

/** AMQP channel-close codes as the router names them. */
const REFUSALS: Readonly<Record<number, string>> = {
  403: 'access-refused',
  404: 'not-found',
  406: 'precondition-failed',
};

/** Thrown by the property when the two sides disagree; the shrunk one becomes the test's message. */
export class DifferentialMismatch extends Error {
  readonly case: DifferentialCase;
  readonly index: number;
  readonly expected: Outcome;
  readonly actual: Outcome;
  constructor(c: DifferentialCase, index: number, expected: Outcome, actual: Outcome) {
    const publication = c.publications[index];
    super(
      [
        `RabbitMQ and the router disagree on publication #${index} of ${c.publications.length}`,
        `  topology:    ${JSON.stringify(c.topology)}`,
        `  publication: ${JSON.stringify(publication)}`,
        `  router:      ${JSON.stringify(expected)}`,
        `  RabbitMQ:    ${JSON.stringify(actual)}`,
      ].join('\n'),
    );
    this.name = 'DifferentialMismatch';
    this.case = c;
    this.index = index;
    this.expected = expected;
    this.actual = actual;
  }
}

/** The outcome of a differential run: counts for the record, and the shrunk counterexample if any. */
export interface DifferentialReport {
  readonly numRuns: number;
  readonly numShrinks: number;
  /** Cases and publications sent to the broker, shrinking included (repeats are remembered). */
  readonly casesOnBroker: number;
  readonly publicationsOnBroker: number;
  readonly durationMs: number;
  readonly counterexample: DifferentialCase | undefined;
  readonly mismatch: DifferentialMismatch | undefined;
  /** Set when the run failed: the minimal counterexample, expected vs actual, and how to replay it. */
  readonly failure: string | undefined;
}

const run = promisify(execFile);

/**
 * A throwaway vhost with one connection, a plain channel for declarations and reads, and a confirm
 * channel for publishing (reopened after the broker closes it to refuse a publication).
 *
 * @example
 * ```ts
 * const lab = await DifferentialLab.open('router');
 * const report = await lab.check(route, { numRuns: 200 });
 * await lab.close();
 * ```
 */
export class DifferentialLab {
  readonly vhost: string;
  readonly #connection: ChannelModel;
  #admin: Channel | undefined;
  #publisher: ConfirmChannel | undefined;
  readonly #memo = new Map<string, Outcome>();
  /** What the last case left behind; `clean: false` at first, so the queues get declared. */
  #declared: { exchanges: string[]; fromPredeclared: GeneratedBinding[]; clean: boolean } = {
    exchanges: [],
    fromPredeclared: [],
    clean: false,
  };
  #cases = 0;
  #publications = 0;

  private constructor(vhost: string, connection: ChannelModel) {
    this.vhost = vhost;
    this.#connection = connection;
  }

  /** Creates the vhost, grants guest on it, and connects. */
  static async open(label: string): Promise<DifferentialLab> {
    const vhost = uniquePrefix(label);
    await run('rabbitmqctl', ['add_vhost', vhost]);
    try {
      await run('rabbitmqctl', ['set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*']);
      const url = new URL(RABBITMQ_URL);
      url.pathname = `/${encodeURIComponent(vhost)}`;
      const connection = await amqplib.connect(url.toString());
      connection.on('error', () => {});
      return new DifferentialLab(vhost, connection);
    } catch (err) {
      await run('rabbitmqctl', ['delete_vhost', vhost]);
      throw err;
    }
  }

  /** Disconnects and deletes the vhost with everything left in it. */
  async close(): Promise<void> {
    try {
      await this.#connection.close();
    } finally {
      await run('rabbitmqctl', ['delete_vhost', this.vhost]);
    }
  }

  /** Runs the property; never throws for a disagreement, which is reported instead. */
  async check(
    router: RouteFunction,
    params: fc.Parameters<[DifferentialCase]>,
    cases: fc.Arbitrary<DifferentialCase> = differentialCase,
  ): Promise<DifferentialReport> {
    const before = { cases: this.#cases, publications: this.#publications };
    const started = performance.now();
    const property = fc.asyncProperty(cases, async (c) => {
      fc.pre(c.publications.length > 0);
      const actual = await this.observe(c);
      c.publications.forEach((p, i) => {
        const expected = predictedOutcome(router, c, p);
        const got = actual[i] as Outcome;
        if (!isDeepStrictEqual(expected, got)) throw new DifferentialMismatch(c, i, expected, got);
      });
    });
    const details = await fc.check(property, params);
    const mismatch =
      details.errorInstance instanceof DifferentialMismatch ? details.errorInstance : undefined;
    const counterexample = details.counterexample?.[0];
    let failure: string | undefined;
    if (details.failed) {
      const replay = `replay with { seed: ${details.seed}, path: ${JSON.stringify(details.counterexamplePath)} }`;
      failure =
        mismatch === undefined
          ? fc.defaultReportMessage(details)
          : `Minimal counterexample after ${details.numShrinks} shrinks (${replay}):\n${mismatch.message}`;
    }
    return {
      numRuns: details.numRuns,
      numShrinks: details.numShrinks,
      casesOnBroker: this.#cases - before.cases,
      publicationsOnBroker: this.#publications - before.publications,
      durationMs: performance.now() - started,
      counterexample,
      mismatch,
      failure,
    };
  }

  /**
   * Declares the case, makes its publications one by one, and reads what every queue received.
   * Routing depends only on the topology and the publication, so outcomes are remembered: while
   * fast-check drops publications from a failing case, the broker is not asked again.
   */
  async observe(c: DifferentialCase): Promise<Outcome[]> {
    const keys = c.publications.map((p) => JSON.stringify([c.topology, p]));
    const pending = c.publications.flatMap((p, i) => (this.#memo.has(keys[i] as string) ? [] : [{ p, i }]));
    if (pending.length > 0) {
      const outcomes = await this.#observeOnBroker(
        c.topology,
        pending.map(({ p }) => p),
      );
      pending.forEach(({ i }, j) => {
        this.#memo.set(keys[i] as string, outcomes[j] as Outcome);
      });
    }
    return keys.map((key) => this.#memo.get(key) as Outcome);
  }

  async #observeOnBroker(
    topology: GeneratedTopology,
    publications: readonly Publication[],
  ): Promise<Outcome[]> {
    this.#cases++;
    const admin = await this.#adminChannel();
    await this.#clear(admin);
    // Recorded before declaring, so that a case failing half-way is still cleared by the next one.
    this.#declared = {
      exchanges: Object.keys(topology.exchanges),
      fromPredeclared: topology.bindings.filter(
        (b) => b.destinationType === 'queue' && !Object.hasOwn(topology.exchanges, b.source),
      ),
      clean: false,
    };
    for (const [name, x] of Object.entries(topology.exchanges)) {
      await admin.assertExchange(name, x.type, { durable: false, ...x.options });
    }
    for (const b of topology.bindings) await this.#bind(admin, b, 'bind');

    const outcomes: Outcome[] = [];
    for (const [i, p] of publications.entries()) {
      this.#publications++;
      outcomes.push(await this.#publish(p, String(i)));
    }
    // Confirms came back, so every copy is already in its queue; each copy names its publication.
    const delivered = outcomes.map(() => new Map<string, number>());
    for (const q of QUEUES) {
      for (
        let m = await admin.get(q, { noAck: true });
        m !== false;
        m = await admin.get(q, { noAck: true })
      ) {
        const counts = delivered[Number(m.properties.messageId)] as Map<string, number>;
        counts.set(q, (counts.get(q) ?? 0) + 1);
      }
    }
    this.#declared = { ...this.#declared, clean: true };
    return outcomes.map((o, i) =>
      'refused' in o ? o : { ...o, delivered: Object.fromEntries(delivered[i] as Map<string, number>) },
    );
  }

  /**
   * Undoes the previous case. The queues stay (declaring one costs more than the rest of a case):
   * deleting an exchange removes every binding from or to it, so only bindings from a predeclared
   * `amq.*` exchange to a queue are left to unbind. After a case that broke off half-way, the queues
   * are deleted and declared again instead, which also drops their bindings and messages.
   */
  async #clear(admin: Channel): Promise<void> {
    const last = this.#declared;
    for (const x of last.exchanges) await admin.deleteExchange(x);
    if (last.clean) {
      for (const b of last.fromPredeclared) await this.#bind(admin, b, 'unbind');
      return;
    }
    for (const q of QUEUES) await admin.deleteQueue(q);
    for (const q of QUEUES) await admin.assertQueue(q, { durable: false });
  }

  async #bind(admin: Channel, b: GeneratedBinding, how: 'bind' | 'unbind'): Promise<void> {
    const args = b.options ?? {};
    if (b.destinationType === 'queue') {
      if (how === 'bind') await admin.bindQueue(b.destination, b.source, b.bindingKey, args);
      else await admin.unbindQueue(b.destination, b.source, b.bindingKey, args);
    } else if (how === 'bind') await admin.bindExchange(b.destination, b.source, b.bindingKey, args);
    else await admin.unbindExchange(b.destination, b.source, b.bindingKey, args);
  }

  async #publish(p: Publication, messageId: string): Promise<Outcome> {
    const channel = await this.#confirmChannel();
    let returned = false;
    let refusedWith: number | undefined;
    const onReturn = (m: amqplib.Message) => {
      if (m.properties.messageId === messageId) returned = true;
    };
    const onError = (err: { code?: number }) => {
      refusedWith = err.code ?? -1;
    };
    channel.on('return', onReturn);
    channel.on('error', onError);
    try {
      // The broker sends basic.return before the ack, and on a refusal amqplib fails the callback.
      await new Promise<void>((resolve) => {
        const options = { mandatory: true, messageId, ...(p.headers && { headers: p.headers }) };
        channel.publish(p.exchange, p.routingKey, Buffer.alloc(0), options, () => resolve());
      });
    } finally {
      channel.off('return', onReturn);
      channel.off('error', onError);
    }
    if (refusedWith !== undefined) return { refused: REFUSALS[refusedWith] ?? `code ${refusedWith}` };
    return { delivered: {}, returned };
  }

  async #adminChannel(): Promise<Channel> {
    if (this.#admin !== undefined) return this.#admin;
    const channel = await this.#connection.createChannel();
    this.#admin = channel;
    channel.on('error', () => {});
    channel.on('close', () => {
      if (this.#admin === channel) this.#admin = undefined;
    });
    return channel;
  }

  async #confirmChannel(): Promise<ConfirmChannel> {
    if (this.#publisher !== undefined) return this.#publisher;
    const channel = await this.#connection.createConfirmChannel();
    this.#publisher = channel;
    // A refusal closes the channel (and is recorded by #publish); the next publication opens another.
    channel.on('error', () => {});
    channel.on('close', () => {
      if (this.#publisher === channel) this.#publisher = undefined;
    });
    return channel;
  }
}
