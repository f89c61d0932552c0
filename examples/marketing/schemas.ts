import { z } from 'zod';

/** One row of an ad platform's CSV export: a campaign's spend on one day. */
export const Spend = z.object({
  campaign: z.string().min(1),
  day: z.string().min(1),
  impressions: z.number().int().nonnegative(),
  clicks: z.number().int().nonnegative(),
  cost: z.number().nonnegative(),
});
export type Spend = z.infer<typeof Spend>;

/** One order, read from the relational `marketing_orders` table. */
export const Order = z.object({
  id: z.number().int(),
  user_id: z.string(),
  campaign: z.string(),
  amount: z.number().nonnegative(),
});
export type Order = z.infer<typeof Order>;

/** The R campaign model's budget advice for a campaign, after a spend row. */
export const Advice = z.object({
  campaign: z.string(),
  day: z.string(),
  spend: z.number().nonnegative(),
  conversions: z.number().int().nonnegative(),
  revenue: z.number().nonnegative(),
  roas: z.number().nonnegative(),
  advice: z.enum(['raise', 'hold', 'cut']),
  budget: z.number().nonnegative(),
  version: z.number().int().nonnegative(),
});
export type Advice = z.infer<typeof Advice>;

/** What applying an advice gave: fed back to the R model, which moves its target return on ad spend. */
export const CampaignResult = z.object({
  campaign: z.string(),
  advice: z.enum(['raise', 'hold', 'cut']),
  roas: z.number().nonnegative(),
});
export type CampaignResult = z.infer<typeof CampaignResult>;
