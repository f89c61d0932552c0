import { expect } from 'vitest';
import { InvalidMessageError } from '../../runtime/core/errors.ts';

/** The InvalidMessageError `run` throws, as [reason, message]; anything else is thrown on. */
export function refusal(run: () => unknown): [string, string] {
  try {
    run();
  } catch (err) {
    if (err instanceof InvalidMessageError) return [err.reason, err.message];
    throw err;
  }
  throw new Error('expected a refusal');
}

/** Resolves once `check` holds, checked on every turn of the event loop (never a fixed sleep). */
export async function untilTurn(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100_000 && !check(); i++) await new Promise((r) => setImmediate(r));
  expect(check()).toBe(true);
}
