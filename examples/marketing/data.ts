import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prng } from '../../actors/example/clickstream.ts';

export const CAMPAIGNS = ['spring-sale', 'retargeting', 'brand-search', 'newsletter'] as const;

/** Sizes of the generated input. */
export interface MarketingData {
  /** CSV files dropped, one per day. */
  readonly days: number;
  /** Orders in the relational table. */
  readonly orders: number;
  /** Users of the clickstream (orders are placed by them). */
  readonly users: number;
  readonly seed: number;
  /** Tags the files of this run, so that a second run's files are new files. */
  readonly runId: string;
}

/** Spend rows dropped in all: one per campaign and day. */
export const spendRows = (data: MarketingData): number => data.days * CAMPAIGNS.length;

/**
 * Drop one CSV export per day into `folder` (`spend-<runId>-<day>.csv`), each written as `.part` and
 * renamed, as an ad platform's upload does; returns the paths.
 */
export function dropCampaignCsvs(folder: string, data: MarketingData): string[] {
  mkdirSync(folder, { recursive: true });
  const random = prng(data.seed + 1);
  const paths: string[] = [];
  for (let d = 0; d < data.days; d++) {
    const day = `2026-11-${String(d + 1).padStart(2, '0')}`;
    const lines = ['campaign,day,impressions,clicks,cost'];
    for (const campaign of CAMPAIGNS) {
      const impressions = 1_000 + Math.floor(random() * 9_000);
      const clicks = Math.floor(impressions * (0.01 + random() * 0.04));
      const cost = Math.round(clicks * (50 + random() * 250)) / 100;
      lines.push(`${campaign},${day},${impressions},${clicks},${cost}`);
    }
    const path = join(folder, `spend-${data.runId}-${day}.csv`);
    writeFileSync(`${path}.part`, `${lines.join('\n')}\n`);
    renameSync(`${path}.part`, path);
    paths.push(path);
  }
  return paths;
}

/** Campaigns do not convert alike: the newsletter brings few orders (its budget gets cut). */
const SHARES = [0.4, 0.3, 0.25, 0.05] as const;
function pick(roll: number): string {
  let acc = 0;
  for (const [i, share] of SHARES.entries()) {
    acc += share;
    if (roll < acc) return CAMPAIGNS[i] ?? 'spring-sale';
  }
  return 'newsletter';
}

/** The orders table's rows: `orders` purchases by clickstream users, each attributed to a campaign. */
export function generateOrders(data: MarketingData): { user_id: string; campaign: string; amount: number }[] {
  const random = prng(data.seed + 2);
  return Array.from({ length: data.orders }, () => ({
    user_id: `user-${Math.floor(random() * data.users)}`,
    campaign: pick(random()),
    amount: Math.round(random() * 30_000) / 100,
  }));
}
