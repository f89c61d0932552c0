import { z } from 'zod';

export const Device = z.enum(['mobile', 'desktop', 'tablet']);

/** One web clickstream event. */
export const Click = z.object({
  userId: z.string().min(1),
  action: z.enum(['view', 'add_to_cart', 'checkout']),
  sku: z.string(),
  price: z.number().nonnegative(),
  device: Device,
  at: z.number().int().nonnegative(),
});
export type Click = z.infer<typeof Click>;

/** A finished browsing session: its features and whether it ended in a purchase. */
export const Session = z.object({
  sessionId: z.string(),
  userId: z.string(),
  device: Device,
  clicks: z.number().int().positive(),
  views: z.number().int().nonnegative(),
  carts: z.number().int().nonnegative(),
  revenue: z.number().nonnegative(),
  durationMs: z.number().nonnegative(),
  purchased: z.boolean(),
  endedBy: z.enum(['checkout', 'timeout']),
});
export type Session = z.infer<typeof Session>;

export const Features = z.array(z.number()).length(4);

/** The propensity the scorer gave a session, with the features it used. */
export const Score = z.object({
  sessionId: z.string(),
  userId: z.string(),
  device: Device,
  score: z.number().min(0).max(1),
  features: Features,
  purchased: z.boolean(),
  modelVersion: z.number().int().nonnegative(),
});
export type Score = z.infer<typeof Score>;

/** What happened after a score: fed back to the scorer, which corrects its weights. */
export const Outcome = z.object({
  sessionId: z.string(),
  device: Device,
  features: Features,
  score: z.number().min(0).max(1),
  purchased: z.boolean(),
});
export type Outcome = z.infer<typeof Outcome>;
