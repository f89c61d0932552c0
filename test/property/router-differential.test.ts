import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTopologyModel,
  type RascalBindingConfig,
  type RascalVhostTopology,
  type RouteResult,
  route,
  splitTopicWords,
} from '../../runtime/routing/index.ts';
import { DifferentialLab, type RouteFunction, typedValueCases } from '../helpers/differential.ts';

let lab: DifferentialLab | undefined;

beforeAll(async () => {
  lab = await DifferentialLab.open('differential');
});

afterAll(async () => {
  await lab?.close();
});

function opened(): DifferentialLab {
  if (lab === undefined) throw new Error('the differential vhost was not created');
  return lab;
}

/** Every way to read each `*` of a topic binding key as one word or as two. */
function starAsOneOrTwoWords(key: string): string[] {
  let variants: string[][] = [[]];
  for (const word of splitTopicWords(key)) {
    const readings = word === '*' ? [['*'], ['*', '*']] : [[word]];
    variants = variants.flatMap((v) => readings.map((r) => [...v, ...r]));
  }
  return variants.map((words) => words.join('.'));
}

/**
 * A deliberately wrong router: in topic bindings `*` also matches two words. Built from the real one
 * by rewriting the topology, so everything else (alternates, e2e, headers, refusals) stays right.
 */
const starMatchesTwoWords: RouteFunction = (topology, publication): RouteResult => {
  const model = buildTopologyModel(topology);
  const widened: RascalVhostTopology = {
    exchanges: Object.fromEntries(
      [...model.exchanges.values()].map((x) => [
        x.name,
        {
          type: x.type,
          options: {
            internal: x.internal,
            ...(x.alternateExchange === undefined ? {} : { alternateExchange: x.alternateExchange }),
          },
        },
      ]),
    ),
    queues: [...model.queues],
    bindings: model.bindings.flatMap((b) => {
      const topic = model.exchanges.get(b.source)?.type === 'topic';
      return (topic ? starAsOneOrTwoWords(b.bindingKey) : [b.bindingKey]).map((bindingKey) => ({
        source: b.source,
        destination: b.destination,
        destinationType: b.destinationType,
        bindingKey,
        options: b.arguments,
      }));
    }),
  };
  return route(widened, publication);
};

/** Drops amqplib's type tags: `{ '!': 'float', value: 1.1 }` read as the plain number 1.1, and so on. */
function untyped(value: unknown): unknown {
  if (value !== null && typeof value === 'object' && Object.hasOwn(value, '!'))
    return (value as { value: unknown }).value;
  return value;
}

/** A deliberately wrong router: it compares header values as JavaScript sees them, not as the broker does. */
const javascriptEquality: RouteFunction = (topology, publication): RouteResult => {
  const plain = (args: Readonly<Record<string, unknown>>): Record<string, unknown> =>
    Object.fromEntries(Object.entries(args).map(([k, v]) => [k, untyped(v)]));
  // The generator writes bindings as a list (see GeneratedTopology).
  const bindings = (topology.bindings ?? []) as readonly RascalBindingConfig[];
  return route(
    {
      ...topology,
      bindings: bindings.map(
        (b): RascalBindingConfig => (b.options ? { ...b, options: plain(b.options) } : b),
      ),
    },
    publication.headers === undefined ? publication : { ...publication, headers: plain(publication.headers) },
  );
};

describe('router against RabbitMQ', () => {
  it('agrees with the broker on 200 random topologies and their publications', async () => {
    const report = await opened().check(route, { numRuns: 200 });
    if (report.failure !== undefined) throw new Error(report.failure);
    expect(report.numRuns).toBeGreaterThanOrEqual(200);
    const seconds = (report.durationMs / 1000).toFixed(1);
    console.info(
      `differential: ${report.numRuns} cases, ${report.publicationsOnBroker} publications on RabbitMQ, ${seconds} s`,
    );
  }, 60_000);

  // About one case in fifty tells this router apart, so it usually falls within the first hundred
  // runs; the generous limit only matters for keeping the chance of a miss negligible.
  it('catches a router in which * matches two words, and shrinks it to one publication and at most two bindings', async () => {
    const report = await opened().check(starMatchesTwoWords, { numRuns: 1000 });
    expect(report.failure).toBeDefined();
    const c = report.mismatch?.case;
    expect(c?.publications).toHaveLength(1);
    // Usually one binding; sometimes an exchange-to-exchange binding in front of it survives shrinking.
    expect(c?.topology.bindings.length).toBeLessThanOrEqual(2);
    expect(c?.topology.bindings.some((b) => b.bindingKey.includes('*'))).toBe(true);
    expect(report.failure).toMatch(/topology: .*\n {2}publication: .*\n {2}router: .*\n {2}RabbitMQ: /);
  }, 60_000);

  it('agrees with the broker on 200 topologies whose header values and binding arguments vary their AMQP field types', async () => {
    const report = await opened().check(route, { numRuns: 200 }, typedValueCases);
    if (report.failure !== undefined) throw new Error(report.failure);
    expect(report.numRuns).toBeGreaterThanOrEqual(200);
    console.info(
      `differential (typed values): ${report.numRuns} cases, ${report.publicationsOnBroker} publications on RabbitMQ, ${(report.durationMs / 1000).toFixed(1)} s`,
    );
  }, 90_000);

  it('catches a router that compares header values as JavaScript sees them', async () => {
    const report = await opened().check(javascriptEquality, { numRuns: 1000 }, typedValueCases);
    expect(report.failure).toBeDefined();
    expect(report.mismatch?.case.publications).toHaveLength(1);
  }, 90_000);
});
