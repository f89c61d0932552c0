import { z } from 'zod';

/** An order as the source emits it. Amounts are in cents, so totals add up exactly. */
export const Order = z.object({
  orderId: z.string().min(1),
  customerId: z.string().min(1),
  amountCents: z.number().int().nonnegative(),
});
export type Order = z.infer<typeof Order>;

/** A customer's running total, emitted after each of their orders. */
export const Total = z.object({
  customerId: z.string().min(1),
  orders: z.number().int().positive(),
  totalCents: z.number().int().nonnegative(),
  tier: z.enum(['new', 'loyal']),
});
export type Total = z.infer<typeof Total>;
