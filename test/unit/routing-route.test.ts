import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../runtime/core/errors.ts';
import {
  buildTopologyModel,
  createRouter,
  PublishRefusedError,
  type RascalVhostTopology,
  route,
} from '../../runtime/routing/index.ts';

const queuesOf = (topology: RascalVhostTopology, exchange: string, routingKey: string) =>
  route(topology, { exchange, routingKey }).queues;

describe('buildTopologyModel (Rascal config forms)', () => {
  it('accepts keyed objects and arrays of names, with Rascal defaults', () => {
    const model = buildTopologyModel({
      exchanges: ['e1', { name: 'e2', type: 'direct' }],
      queues: { q1: {}, q2: { options: { durable: false } } },
      bindings: { b1: { source: 'e1', destination: 'q1' } },
    });
    expect(model.exchanges.get('e1')).toEqual({
      name: 'e1',
      type: 'topic',
      internal: false,
      alternateExchange: undefined,
    });
    expect(model.exchanges.get('e2')?.type).toBe('direct');
    expect([...model.queues]).toEqual(['q1', 'q2']);
    expect(model.bindings).toEqual([
      {
        name: 'b1',
        source: 'e1',
        destination: 'q1',
        destinationType: 'queue',
        bindingKey: '#',
        arguments: {},
      },
    ]);
  });

  it('parses the binding-name shorthand the way Rascal does', () => {
    const model = buildTopologyModel({
      exchanges: ['ex.a', 'ex:b'],
      queues: ['q-1', 'q2'],
      bindings: ['ex.a[a.*, b.#  c] -> q-1', 'ex:b -> q2', 'ex.a[] -> q2'],
    });
    expect(model.bindings.map((b) => [b.source, b.bindingKey, b.destination])).toEqual([
      ['ex.a', 'a.*', 'q-1'],
      ['ex.a', 'b.#', 'q-1'],
      ['ex.a', 'c', 'q-1'],
      ['ex:b', '#', 'q2'],
      ['ex.a', '#', 'q2'],
    ]);
  });

  it('merges bindingKeys, bindingKey and name keys without duplicates; explicit fields win', () => {
    const model = buildTopologyModel({
      exchanges: ['e', 'other'],
      queues: ['q', 'r'],
      bindings: {
        'e[a] -> q': { bindingKeys: ['b', 'a'], bindingKey: 'c' },
        'e -> q': { destination: 'r', source: 'other', bindingKey: '' },
      },
    });
    expect(model.bindings.map((b) => `${b.source}:${b.bindingKey}:${b.destination}`)).toEqual([
      'e:b:q',
      'e:a:q',
      'e:c:q',
      'other::r',
    ]);
  });

  it('reads the alternate exchange from alternateExchange first, then arguments', () => {
    const model = buildTopologyModel({
      exchanges: {
        a: { options: { alternateExchange: 'x', arguments: { 'alternate-exchange': 'y' } } },
        b: { options: { arguments: { 'alternate-exchange': 'y' } } },
        c: { type: 'fanout', options: { internal: true } },
      },
    });
    expect(model.exchanges.get('a')?.alternateExchange).toBe('x');
    expect(model.exchanges.get('b')?.alternateExchange).toBe('y');
    expect(model.exchanges.get('c')?.internal).toBe(true);
  });

  it('treats binding options as the argument table, as Rascal passes them to amqplib', () => {
    const model = buildTopologyModel({
      exchanges: { h: { type: 'headers' } },
      queues: ['q'],
      bindings: { b: { source: 'h', destination: 'q', options: { 'x-match': 'any', a: 1 } } },
    });
    expect(model.bindings[0]?.arguments).toEqual({ 'x-match': 'any', a: 1 });
  });

  it('names the binding and path in errors', () => {
    const base = { exchanges: ['e'], queues: ['q'] };
    expect(() => buildTopologyModel({ ...base, bindings: ['e -> nope'] })).toThrow(
      /bindings\.e -> nope\.destination: binding 'e -> nope' refers to an unknown queue 'nope'/,
    );
    expect(() =>
      buildTopologyModel({ ...base, bindings: { b1: { source: 'x', destination: 'q' } } }),
    ).toThrow(/binding 'b1' refers to an unknown exchange 'x'/);
    expect(() =>
      buildTopologyModel({
        ...base,
        bindings: { b2: { source: 'e', destination: 'q', destinationType: 'exchange' } },
      }),
    ).toThrow(/unknown exchange 'q'/);
    expect(() => buildTopologyModel({ ...base, bindings: { b3: { destination: 'q' } } })).toThrow(
      ConfigError,
    );
    expect(() => buildTopologyModel({ ...base, bindings: { b4: { source: '', destination: 'q' } } })).toThrow(
      /default exchange/,
    );
    expect(() => buildTopologyModel({ exchanges: { e: { type: 'x-delayed-message' } } })).toThrow(
      /exchanges\.e\.type/,
    );
  });

  it('does not mutate its input', () => {
    const topology = Object.freeze({
      exchanges: Object.freeze({ e: Object.freeze({}) }),
      queues: Object.freeze(['q']),
      bindings: Object.freeze(['e[a, b] -> q']),
    });
    expect(() => buildTopologyModel(topology)).not.toThrow();
  });
});

describe('route: exchange types', () => {
  it('default exchange routes a key equal to a queue name to that queue only', () => {
    const topology = { queues: ['jobs', 'jobs.eu'] };
    expect(queuesOf(topology, '', 'jobs')).toEqual(['jobs']);
    expect(queuesOf(topology, '', 'jobs.eu')).toEqual(['jobs.eu']);
    expect(route(topology, { exchange: '', routingKey: 'nope' })).toEqual({
      queues: [],
      unroutable: true,
      alternate: false,
    });
  });

  it('direct compares whole keys, including the empty key', () => {
    const topology = {
      exchanges: { d: { type: 'direct' } },
      queues: ['q1', 'q2', 'q3'],
      bindings: {
        b1: { source: 'd', destination: 'q1', bindingKey: 'a.*' },
        b2: { source: 'd', destination: 'q2', bindingKey: '' },
        b3: { source: 'd', destination: 'q3', bindingKey: 'a.b' },
      },
    };
    expect(queuesOf(topology, 'd', 'a.b')).toEqual(['q3']);
    expect(queuesOf(topology, 'd', 'a.*')).toEqual(['q1']);
    expect(queuesOf(topology, 'd', '')).toEqual(['q2']);
  });

  it('fanout ignores keys; topic is the default exchange type', () => {
    const topology = {
      exchanges: { f: { type: 'fanout' }, t: {} },
      queues: ['q1', 'q2'],
      bindings: ['f[ignored] -> q1', 't[a.#] -> q2'],
    };
    expect(queuesOf(topology, 'f', 'anything')).toEqual(['q1']);
    expect(queuesOf(topology, 't', 'a')).toEqual(['q2']);
    expect(queuesOf(topology, 't', 'b')).toEqual([]);
  });

  it('headers ignores the routing key and applies x-match', () => {
    const router = createRouter({
      exchanges: { h: { type: 'headers' } },
      queues: ['pdf', 'any'],
      bindings: {
        b1: { source: 'h', destination: 'pdf', options: { format: 'pdf', type: 'report' } },
        b2: { source: 'h', destination: 'any', options: { 'x-match': 'any', format: 'pdf', type: 'log' } },
      },
    });
    expect(
      router({ exchange: 'h', routingKey: 'x', headers: { format: 'pdf', type: 'report' } }).queues,
    ).toEqual(['any', 'pdf']);
    expect(router({ exchange: 'h', routingKey: 'x', headers: { type: 'log' } }).queues).toEqual(['any']);
    expect(router({ exchange: 'h', routingKey: 'x' }).queues).toEqual([]);
  });

  it('knows the pre-declared amq.* exchanges', () => {
    const topology = { queues: ['q'] };
    expect(queuesOf(topology, 'amq.topic', 'q')).toEqual([]);
    expect(() => queuesOf(topology, 'amq.rabbitmq.trace', 'x')).toThrow(PublishRefusedError);
  });
});

describe('route: refusals', () => {
  const topology = { exchanges: { int: { type: 'fanout', options: { internal: true } } }, queues: ['q'] };

  it('throws NOT_FOUND for an unknown exchange', () => {
    try {
      route(topology, { exchange: 'missing', routingKey: '' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(PublishRefusedError);
      expect(err).toMatchObject({ reason: 'not-found', exchange: 'missing', code: 'WARREN_PUBLISH_FAILED' });
    }
  });

  it('throws ACCESS_REFUSED for an internal exchange', () => {
    expect(() => route(topology, { exchange: 'int', routingKey: '' })).toThrow(/internal.*ACCESS_REFUSED/);
  });

  it('throws PRECONDITION_FAILED for CC/BCC headers that are not arrays', () => {
    expect(() => route(topology, { exchange: '', routingKey: 'q', headers: { CC: 'q' } })).toThrow(
      /PRECONDITION_FAILED/,
    );
    expect(() => route(topology, { exchange: '', routingKey: 'q', headers: { BCC: null } })).toThrow(
      PublishRefusedError,
    );
  });
});

describe('route: exchange-to-exchange bindings', () => {
  const topology: RascalVhostTopology = {
    exchanges: {
      x1: { type: 'direct' },
      x2: { type: 'topic' },
      x3: { type: 'fanout' },
      loop: { type: 'fanout' },
    },
    queues: ['q1', 'q2', 'q3'],
    bindings: {
      a: { source: 'x1', destination: 'x2', destinationType: 'exchange', bindingKey: 'k' },
      b: { source: 'x1', destination: 'x3', destinationType: 'exchange', bindingKey: 'k' },
      c: { source: 'x2', destination: 'q2', bindingKey: '#' },
      d: { source: 'x3', destination: 'q2' },
      e: { source: 'x3', destination: 'x1', destinationType: 'exchange' },
      f: { source: 'x1', destination: 'q1', bindingKey: 'k' },
      g: { source: 'loop', destination: 'loop', destinationType: 'exchange' },
      h: { source: 'x2', destination: 'x3', destinationType: 'exchange', bindingKey: 'k' },
    },
  };

  it('follows chains and delivers to each queue once', () => {
    expect(route(topology, { exchange: 'x1', routingKey: 'k' })).toEqual({
      queues: ['q1', 'q2'],
      unroutable: false,
      alternate: false,
    });
  });

  it('terminates on cycles', () => {
    expect(queuesOf(topology, 'x3', 'k')).toEqual(['q1', 'q2']);
    expect(queuesOf(topology, 'loop', 'k')).toEqual([]);
  });
});

describe('route: alternate exchanges', () => {
  const topology: RascalVhostTopology = {
    exchanges: {
      x1: { type: 'direct', options: { alternateExchange: 'ae1' } },
      x2: { type: 'direct', options: { alternateExchange: 'ae2' } },
      ae1: { type: 'fanout' },
      ae2: { type: 'fanout', options: { internal: true } },
      self: { type: 'topic', options: { alternateExchange: 'self' } },
      p: { type: 'direct', options: { alternateExchange: 'r' } },
      r: { type: 'direct', options: { alternateExchange: 'p' } },
      ghost: { type: 'direct', options: { alternateExchange: 'does-not-exist' } },
      chain: { type: 'direct', options: { alternateExchange: 'x2' } },
      loopy: { type: 'fanout', options: { alternateExchange: 'ae1' } },
    },
    queues: ['q1', 'lost1', 'lost2', 'qp', 'qr'],
    bindings: {
      a: { source: 'x1', destination: 'x2', destinationType: 'exchange', bindingKey: 'k' },
      b: { source: 'x2', destination: 'q1', bindingKey: 'k2' },
      c: { source: 'ae1', destination: 'lost1' },
      d: { source: 'ae2', destination: 'lost2' },
      e: { source: 'p', destination: 'qp', bindingKey: 'p' },
      f: { source: 'r', destination: 'qr', bindingKey: 'r' },
      g: { source: 'x1', destination: 'q1', bindingKey: 'k2' },
      h: { source: 'loopy', destination: 'loopy', destinationType: 'exchange' },
    },
  };

  it('uses the alternate when the exchange matches nothing', () => {
    expect(route(topology, { exchange: 'x1', routingKey: 'zz' })).toEqual({
      queues: ['lost1'],
      unroutable: false,
      alternate: true,
    });
  });

  it('consults each exchange in a chain on its own: a matching e2e binding hides the first alternate', () => {
    // x1 matches 'k' (to x2), so ae1 is not used; x2 matches nothing for 'k', so its ae2 is.
    expect(route(topology, { exchange: 'x1', routingKey: 'k' })).toEqual({
      queues: ['lost2'],
      unroutable: false,
      alternate: true,
    });
    expect(queuesOf(topology, 'x1', 'k2')).toEqual(['q1']);
  });

  it('delivers through an internal alternate exchange', () => {
    expect(queuesOf(topology, 'x2', 'zz')).toEqual(['lost2']);
  });

  it('follows alternates of alternates and stops on cycles', () => {
    expect(queuesOf(topology, 'chain', 'zz')).toEqual(['lost2']);
    expect(queuesOf(topology, 'p', 'r')).toEqual(['qr']);
    expect(queuesOf(topology, 'r', 'p')).toEqual(['qp']);
    expect(route(topology, { exchange: 'p', routingKey: 'zz' })).toEqual({
      queues: [],
      unroutable: true,
      alternate: true,
    });
    expect(route(topology, { exchange: 'self', routingKey: 'zz' })).toEqual({
      queues: [],
      unroutable: true,
      alternate: false,
    });
  });

  it('skips an alternate exchange that does not exist, as the broker does', () => {
    expect(route(topology, { exchange: 'ghost', routingKey: 'zz' })).toEqual({
      queues: [],
      unroutable: true,
      alternate: false,
    });
  });

  it('does not use the alternate when a binding matched, even one leading back to the same exchange', () => {
    expect(route(topology, { exchange: 'loopy', routingKey: 'zz' })).toEqual({
      queues: [],
      unroutable: true,
      alternate: false,
    });
  });
});

describe('route: sender-selected distribution (CC/BCC)', () => {
  const topology: RascalVhostTopology = {
    exchanges: { d: { type: 'direct' }, h: { type: 'headers' } },
    queues: ['q1', 'q4', 'q5', 'hq'],
    bindings: {
      a: { source: 'd', destination: 'q4', bindingKey: 'four' },
      b: { source: 'd', destination: 'q5', bindingKey: 'five' },
      c: { source: 'h', destination: 'hq', options: { 'x-match': 'any', CC: null, BCC: null } },
    },
  };

  it('adds string elements of CC and BCC as routing keys', () => {
    expect(
      route(topology, { exchange: '', routingKey: 'q1', headers: { CC: ['q4', 7], BCC: ['q5'] } }).queues,
    ).toEqual(['q1', 'q4', 'q5']);
    expect(route(topology, { exchange: 'd', routingKey: 'zz', headers: { CC: ['four'] } }).queues).toEqual([
      'q4',
    ]);
    expect(
      route(topology, { exchange: 'd', routingKey: 'zz', headers: { BCC: ['five', 'four'] } }).queues,
    ).toEqual(['q4', 'q5']);
    expect(
      route(topology, { exchange: 'd', routingKey: 'zz', headers: { CC: [Buffer.from('four')] } }).queues,
    ).toEqual([]);
  });

  it('hides BCC from headers exchanges but not CC', () => {
    expect(route(topology, { exchange: 'h', routingKey: 'z', headers: { BCC: [] } }).queues).toEqual([]);
    expect(route(topology, { exchange: 'h', routingKey: 'z', headers: { CC: [] } }).queues).toEqual(['hq']);
  });
});

describe('createRouter: compiled form', () => {
  const topology: RascalVhostTopology = {
    exchanges: {
      t: {},
      h: { type: 'headers' },
      front: { type: 'fanout', options: { alternateExchange: 'h' } },
    },
    queues: ['q', 'hq'],
    bindings: ['t[a.*] -> q', { source: 'h', destination: 'hq', options: { v: 1 } }],
  };

  it('returns frozen results that callers cannot corrupt', () => {
    const router = createRouter(topology);
    const first = router({ exchange: 't', routingKey: 'a.b' });
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first.queues)).toBe(true);
    expect(router({ exchange: 't', routingKey: 'a.b' })).toEqual({
      queues: ['q'],
      unroutable: false,
      alternate: false,
    });
  });

  it('routes by headers whenever a headers exchange is reachable, never from the key cache', () => {
    const router = createRouter(topology);
    expect(router({ exchange: 'front', routingKey: 'k', headers: { v: 1 } }).queues).toEqual(['hq']);
    expect(router({ exchange: 'front', routingKey: 'k', headers: { v: 2 } }).queues).toEqual([]);
    expect(router({ exchange: 'front', routingKey: 'k' }).queues).toEqual([]);
  });

  it('stays correct past the cache bound', () => {
    const router = createRouter(topology);
    for (let i = 0; i < 25_000; i++) {
      const key = `a.${i}`;
      expect(router({ exchange: 't', routingKey: key }).queues).toEqual(['q']);
    }
    expect(router({ exchange: 't', routingKey: 'a.b.c' }).queues).toEqual([]);
  });
});

describe('buildTopologyModel: anonymous entries', () => {
  it('names an anonymous binding in an array, as Rascal does, and refuses an anonymous queue', () => {
    const model = buildTopologyModel({
      exchanges: ['e'],
      queues: ['q'],
      bindings: [{ source: 'e', destination: 'q' }],
    });
    expect(model.bindings[0]?.name).toBe('unnamed-0');
    expect(() => buildTopologyModel({ queues: [{}] })).toThrow(/queues\[0\]\.name/);
  });
});

describe('keys as they travel', () => {
  it('sees a lone surrogate in a routing key, binding key or CC key as U+FFFD, as the broker does', () => {
    const topology: RascalVhostTopology = {
      exchanges: { d: { type: 'direct' }, t: { type: 'topic' } },
      queues: ['q', 'r'],
      bindings: [
        { source: 'd', destination: 'q', bindingKey: '\uFFFD' },
        { source: 't', destination: 'r', bindingKey: 'a.\uD800' },
      ],
    };
    expect(queuesOf(topology, 'd', '\uD800')).toEqual(['q']);
    expect(queuesOf(topology, 't', 'a.\uFFFD')).toEqual(['r']);
    expect(route(topology, { exchange: 'd', routingKey: 'x', headers: { CC: ['\uDC00'] } }).queues).toEqual([
      'q',
    ]);
  });
});
