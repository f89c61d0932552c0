import { describe, expectTypeOf, test } from 'vitest';
import {
  type ConsumerDefinition,
  definePipeline,
  defineProcessor,
  defineSink,
  defineSource,
  type Incoming,
  type MessageMeta,
  type Outgoing,
  type PipelineDefinition,
  type SourceDefinition,
  type SourceInput,
  type SourceItem,
} from 'warren';
import { assign, emit, setup } from 'xstate';
import { z } from 'zod';

const Click = z.object({ userId: z.string(), action: z.enum(['view', 'checkout']), at: z.number() });
const Session = z.object({ userId: z.string(), clicks: z.number() });
type Click = z.infer<typeof Click>;
type Session = z.infer<typeof Session>;

const consumes = { click: Click };
const emits = { session: Session };

/** A well-formed sessionizer: events are the consumed messages, `emitted` is exactly what it declares. */
function sessionMachine() {
  return setup({
    types: {
      context: {} as { userId: string; clicks: number },
      events: {} as Incoming<typeof consumes>,
      emitted: {} as Outgoing<typeof emits>,
    },
  }).createMachine({
    context: { userId: '', clicks: 0 },
    on: {
      click: {
        actions: [
          assign(({ context, event }) => {
            expectTypeOf(event.body).toEqualTypeOf<Click>();
            expectTypeOf(event.body.userId).toEqualTypeOf<string>();
            // @ts-expect-error a click has no `sku`
            event.body.sku;
            return { userId: event.body.userId, clicks: context.clicks + 1 };
          }),
          emit(({ context, event }) => {
            expectTypeOf(event.type).toEqualTypeOf<'click'>();
            expectTypeOf(event.body.userId).toEqualTypeOf<string>();
            expectTypeOf(event.body.action).toEqualTypeOf<'view' | 'checkout'>();
            expectTypeOf(event.meta).toEqualTypeOf<MessageMeta>();
            // @ts-expect-error a click has no `revenue`
            event.body.revenue;
            return { type: 'session' as const, body: { userId: event.body.userId, clicks: context.clicks } };
          }),
        ],
      },
    },
  });
}

describe('Incoming / Outgoing', () => {
  test('Incoming is one { type, body, meta } member per consumed type, typed by its schema', () => {
    type In = Incoming<{ click: typeof Click; session: typeof Session }>;
    expectTypeOf<Extract<In, { type: 'click' }>['body']>().toEqualTypeOf<Click>();
    expectTypeOf<Extract<In, { type: 'session' }>['body']>().toEqualTypeOf<Session>();
    expectTypeOf<In['type']>().toEqualTypeOf<'click' | 'session'>();
  });

  test('Outgoing is one { type, body, headers? } member per declared type', () => {
    expectTypeOf<Outgoing<typeof emits>>().toEqualTypeOf<{
      readonly type: 'session';
      readonly body: Session;
      readonly headers?: Readonly<Record<string, string | number | boolean>>;
    }>();
  });
});

describe('defineProcessor', () => {
  test('the machine sees typed bodies; key() gets the typed message', () => {
    const sessionizer = defineProcessor({
      name: 'sessionizer',
      consumes,
      emits,
      key: (m) => {
        expectTypeOf(m.body).toEqualTypeOf<Click>();
        expectTypeOf(m).toEqualTypeOf<Incoming<typeof consumes>>();
        // @ts-expect-error a click has no `device`
        m.body.device;
        return m.body.userId;
      },
      machine: sessionMachine(),
    });
    expectTypeOf(sessionizer.name).toEqualTypeOf<'sessionizer'>();
    expectTypeOf(sessionizer.kind).toEqualTypeOf<'processor'>();
    expectTypeOf(sessionizer).toEqualTypeOf<
      ConsumerDefinition<'processor', 'sessionizer', typeof consumes, typeof emits>
    >();
  });

  test('key must return a string', () => {
    defineProcessor({
      name: 'bad-key',
      consumes,
      emits,
      // @ts-expect-error at is a number, not a key
      key: (m) => m.body.at,
      machine: sessionMachine(),
    });
  });

  test('a machine emitting a type the actor does not declare is rejected', () => {
    const wider = setup({
      types: {
        events: {} as Incoming<typeof consumes>,
        emitted: {} as Outgoing<{ session: typeof Session; alert: typeof Click }>,
      },
    }).createMachine({});
    // @ts-expect-error the machine may emit `alert`, which `emits` does not declare
    defineProcessor({ name: 'wider', consumes, emits, machine: wider });
  });

  test('emit() of an undeclared type inside a typed machine is rejected', () => {
    setup({
      types: { events: {} as Incoming<typeof consumes>, emitted: {} as Outgoing<typeof emits> },
    }).createMachine({
      on: {
        click: {
          // @ts-expect-error `undeclared` is not in `emits`
          actions: emit({ type: 'undeclared', body: { userId: 'u1', clicks: 1 } }),
        },
      },
    });
  });

  test('a machine without a declared `emitted` type is rejected when the actor emits something', () => {
    const untyped = setup({ types: { events: {} as Incoming<typeof consumes> } }).createMachine({});
    // @ts-expect-error emitted must be declared as Outgoing<typeof emits>
    defineProcessor({ name: 'untyped', consumes, emits, machine: untyped });
  });

  test('a machine that does not accept every consumed type is rejected', () => {
    const clicksOnly = setup({
      types: { events: {} as Incoming<typeof consumes>, emitted: {} as Outgoing<typeof emits> },
    }).createMachine({});
    // @ts-expect-error the machine does not accept `session`
    defineProcessor({
      name: 'partial',
      consumes: { click: Click, session: Session },
      emits,
      machine: clicksOnly,
    });

    const other = setup({
      types: { events: {} as { type: 'tick' }, emitted: {} as Outgoing<typeof emits> },
    }).createMachine({});
    // @ts-expect-error the machine accepts only `tick`
    defineProcessor({ name: 'other', consumes, emits, machine: other });
  });
});

describe('defineSink', () => {
  test('a sink with no outputs may leave `emitted` undeclared and keeps its literal name', () => {
    const sink = defineSink({
      name: 'sessions',
      consumes: emits,
      emits: {},
      machine: setup({ types: { events: {} as Incoming<typeof emits> } }).createMachine({}),
    });
    expectTypeOf(sink.name).toEqualTypeOf<'sessions'>();
    expectTypeOf(sink.kind).toEqualTypeOf<'sink'>();
  });
});

describe('defineSource', () => {
  test('without a machine, read() yields SourceItems', () => {
    const source = defineSource({
      name: 'clickstream',
      emits: consumes,
      *read() {
        yield { type: 'click' as const, body: { userId: 'u1', action: 'view', at: 0 } };
      },
    });
    expectTypeOf(source.name).toEqualTypeOf<'clickstream'>();
    expectTypeOf(source.kind).toEqualTypeOf<'source'>();
    expectTypeOf(source).toExtend<SourceDefinition<'clickstream', typeof consumes>>();
    expectTypeOf<SourceItem<typeof consumes>['type']>().toEqualTypeOf<'click'>();
  });

  test('without a machine, a read() yielding numbers is rejected', () => {
    // @ts-expect-error a source without a machine must read SourceItem values
    defineSource({
      name: 'numbers',
      emits: consumes,
      *read() {
        yield 1;
      },
    });
  });

  test('without a machine, items of an undeclared type are rejected', () => {
    // @ts-expect-error `alert` is not declared in `emits`
    defineSource({
      name: 'alerts',
      emits: consumes,
      read: () => [{ type: 'alert' as const, body: {} }],
    });
  });
});

describe('defineSource with a machine', () => {
  test('the machine receives SourceInput<item> and emits declared messages', () => {
    const lines = setup({
      types: { events: {} as SourceInput<string>, emitted: {} as Outgoing<typeof consumes> },
    }).createMachine({
      on: {
        'warren.input': {
          actions: emit(({ event }) => {
            expectTypeOf(event.input).toEqualTypeOf<string>();
            return { type: 'click' as const, body: { userId: event.input, action: 'view' as const, at: 0 } };
          }),
        },
      },
    });
    const source = defineSource({ name: 'lines', emits: consumes, read: () => ['u1', 'u2'], machine: lines });
    expectTypeOf(source).toEqualTypeOf<SourceDefinition<'lines', typeof consumes, string>>();
  });

  test('a source machine emitting an undeclared type is rejected', () => {
    const wider = setup({
      types: { events: {} as SourceInput<string>, emitted: {} as Outgoing<{ alert: typeof Click }> },
    }).createMachine({});
    // @ts-expect-error the machine may emit `alert`, which `emits` does not declare
    defineSource({ name: 'lines', emits: consumes, read: () => ['u1'], machine: wider });
  });
});

describe('definePipeline', () => {
  test('accepts the definitions and keeps their types', () => {
    const clickstream = defineSource({
      name: 'clickstream',
      emits: consumes,
      read: () => [] as SourceItem<typeof consumes>[],
    });
    const sessionizer = defineProcessor({
      name: 'sessionizer',
      consumes,
      emits,
      key: (m) => m.body.userId,
      machine: sessionMachine(),
    });
    const sink = defineSink({
      name: 'sessions',
      consumes: emits,
      emits: {},
      machine: setup({ types: { events: {} as Incoming<typeof emits> } }).createMachine({}),
    });
    const pipeline = definePipeline({ name: 'shop', actors: [clickstream, sessionizer, sink] });
    expectTypeOf(pipeline).toExtend<PipelineDefinition>();
    expectTypeOf(pipeline.actors[1].name).toEqualTypeOf<'sessionizer'>();
    expectTypeOf(pipeline.actors[1].kind).toEqualTypeOf<'processor'>();
    expectTypeOf(pipeline.actors[0].kind).toEqualTypeOf<'source'>();
  });

  test('rejects something that is not a definition', () => {
    // @ts-expect-error a plain object is not an actor definition
    definePipeline({ name: 'shop', actors: [{ name: 'x' }] });
  });
});
