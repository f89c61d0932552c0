import { defineProcessor, type Incoming, type Outgoing } from 'warren';
import { assign, emit, setup } from 'xstate';
import { Click, Session } from './schemas.ts';

const consumes = { click: Click };
const emits = { session: Session };

interface SessionContext {
  readonly userId: string;
  readonly sessions: number;
  readonly current: Omit<Session, 'purchased' | 'endedBy' | 'durationMs'> & {
    readonly startedAt: number;
    readonly lastAt: number;
  };
}

function summary(context: SessionContext, endedBy: Session['endedBy']): Session {
  const { startedAt, lastAt, ...rest } = context.current;
  return { ...rest, durationMs: lastAt - startedAt, purchased: endedBy === 'checkout', endedBy };
}

/**
 * The keyed `sessionizer`: one XState session machine per user. A click opens or extends the session;
 * checkout closes it with a purchase; `timeoutMs` without a click closes it as abandoned. The timeout is
 * an XState `after` delay, kept as a durable timer by the runtime.
 *
 * @example
 * ```ts
 * const actor = sessionizer({ timeoutMs: 500 });
 * ```
 */
export function sessionizer(options: { readonly timeoutMs: number; readonly shards?: number }) {
  const machine = setup({
    types: {
      context: {} as SessionContext,
      events: {} as Incoming<typeof consumes>,
      emitted: {} as Outgoing<typeof emits>,
    },
    delays: { inactivity: options.timeoutMs },
    actions: {
      open: assign(({ context, event }) => ({
        sessions: context.sessions + 1,
        current: {
          sessionId: `${event.body.userId}:${context.sessions + 1}`,
          userId: event.body.userId,
          device: event.body.device,
          clicks: 1,
          views: event.body.action === 'view' ? 1 : 0,
          carts: event.body.action === 'add_to_cart' ? 1 : 0,
          revenue: 0,
          startedAt: event.body.at,
          lastAt: event.body.at,
        },
      })),
      extend: assign(({ context, event }) => ({
        current: {
          ...context.current,
          clicks: context.current.clicks + 1,
          views: context.current.views + (event.body.action === 'view' ? 1 : 0),
          carts: context.current.carts + (event.body.action === 'add_to_cart' ? 1 : 0),
          revenue: context.current.revenue + (event.body.action === 'checkout' ? event.body.price : 0),
          lastAt: event.body.at,
        },
      })),
      closeBought: emit(({ context }) => ({ type: 'session' as const, body: summary(context, 'checkout') })),
      closeAbandoned: emit(({ context }) => ({
        type: 'session' as const,
        body: summary(context, 'timeout'),
      })),
    },
    guards: { isCheckout: ({ event }) => event.body.action === 'checkout' },
  }).createMachine({
    id: 'session',
    context: ({ input }) => ({
      userId: '',
      sessions: 0,
      current: {
        sessionId: '',
        userId: '',
        device: 'mobile',
        clicks: 0,
        views: 0,
        carts: 0,
        revenue: 0,
        startedAt: 0,
        lastAt: 0,
      },
      ...(input as object),
    }),
    initial: 'idle',
    states: {
      idle: { on: { click: { target: 'active', actions: 'open' } } },
      active: {
        after: { inactivity: { target: 'idle', actions: 'closeAbandoned' } },
        on: {
          click: [
            { guard: 'isCheckout', target: 'idle', actions: ['extend', 'closeBought'] },
            { target: 'active', reenter: true, actions: 'extend' },
          ],
        },
      },
    },
  });
  return defineProcessor({
    name: 'sessionizer',
    consumes,
    emits,
    key: (message) => message.body.userId,
    // Four shard queues by default: enough for the example's two workers (warren's default, 32, suits
    // a fleet); the scale-out tests ask for more.
    shards: options.shards ?? 4,
    description: `one session machine per user; closes on checkout or after ${options.timeoutMs} ms idle`,
    machine,
  });
}
