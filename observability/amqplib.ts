import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

type Wrapped = ((...args: unknown[]) => unknown) & { __wrapped?: boolean; __original?: unknown };

/** What @opentelemetry/instrumentation-amqplib wraps (with shimmer) on amqplib's channel classes. */
const PATCHED = {
  Channel: ['publish', 'consume', 'ack', 'nack', 'reject', 'ackAll', 'nackAll', 'emit'],
  ConfirmChannel: ['publish'],
} as const;

/**
 * warren traces its AMQP traffic itself, after the current messaging conventions. If an amqplib
 * auto-instrumentation (`@opentelemetry/instrumentation-amqplib`, e.g. through
 * auto-instrumentations-node) has wrapped amqplib's channels, every publish and delivery would get a
 * second, older-style span, and its publish wrapper would overwrite warren's `traceparent`. So warren
 * puts amqplib's own methods back. Returns what it restored (for the log line), empty when nothing was
 * wrapped.
 */
export function unwrapAmqplibInstrumentation(): string[] {
  const require = createRequire(import.meta.url);
  // amqplib's package exports hide lib/; the absolute path reaches the same module instance it uses.
  const model = require(join(dirname(require.resolve('amqplib')), 'lib', 'channel_model.js')) as Record<
    string,
    { prototype: Record<string, Wrapped | undefined> } | undefined
  >;
  const restored: string[] = [];
  for (const [cls, methods] of Object.entries(PATCHED)) {
    const proto = model[cls]?.prototype;
    if (!proto) continue;
    for (const method of methods) {
      const fn = proto[method];
      if (fn?.__wrapped && typeof fn.__original === 'function') {
        proto[method] = fn.__original as Wrapped;
        restored.push(`${cls}.${method}`);
      }
    }
  }
  return restored;
}
