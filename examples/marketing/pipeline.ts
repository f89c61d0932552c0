import { join } from 'node:path';
import { type ActorDefinition, definePipeline, defineProcessor, type Incoming, type Outgoing } from 'warren';
import {
  fileSource,
  httpSink,
  jsonFileSink,
  jsonlSink,
  postgresSink,
  postgresSource,
  pythonProcessor,
  rProcessor,
} from 'warren/actors';
import { emit, setup } from 'xstate';
import { clickstream } from '../../actors/example/clickstream.ts';
import { outcomes } from '../../actors/example/outcomes.ts';
import { Click, Outcome, Score, Session } from '../../actors/example/schemas.ts';
import { sessionizer } from '../../actors/example/sessionizer.ts';
import { dropCampaignCsvs, type MarketingData, spendRows } from './data.ts';
import { Advice, CampaignResult, Order, Spend } from './schemas.ts';
import { around, BudgetApi, ExampleDatabase, findRscript } from './setup.ts';

const env = process.env;
const int = (name: string, fallback: number): number => {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error(`${name}: must be a non-negative integer (got ${JSON.stringify(value)})`);
  return n;
};
const here = import.meta.dirname;

/** Sizes and places of the example, from the environment so tests and demos can scale it. */
export const marketing = {
  users: int('WARREN_USERS', 100),
  events: int('WARREN_EVENTS', 2_000),
  seed: int('WARREN_SEED', 42),
  runId: env.WARREN_RUN_ID ?? Date.now().toString(36),
  days: int('MARKETING_DAYS', 3),
  orders: int('MARKETING_ORDERS', 40),
  sessionTimeoutMs: int('WARREN_SESSION_TIMEOUT_MS', 1_000),
  outDir: env.WARREN_OUT_DIR ?? join('out', 'marketing'),
  /** Where the ad platform drops its CSV exports (filled at start). */
  dropDir: env.MARKETING_DROP_DIR,
  /** The database schema of the example's tables (default `public`). */
  schema: env.MARKETING_SCHEMA ?? 'public',
  /** The budget API; default a local receiver the example starts. */
  apiUrl: env.MARKETING_API_URL || undefined,
  /** `Rscript`, when found: the R campaign branch runs only then. */
  rscript: findRscript(env),
};
const data: MarketingData = marketing;
const dropDir = marketing.dropDir ?? join(marketing.outDir, 'drops');
const db = new ExampleDatabase({ connectTimeoutMs: 10_000 }, marketing.schema);
const api = new BudgetApi(marketing.apiUrl);

/** How many records each source yields: the closing line's expectations. */
export const expected = {
  clicks: marketing.events,
  spendRows: spendRows(data),
  orders: marketing.orders,
};

// --- Sources -------------------------------------------------------------------------------------

const clicks = clickstream(marketing);

/** Ad-campaign CSV exports dropped in a folder; the example drops this run's files at start. */
const adExports = around(
  fileSource({
    name: 'ad-exports',
    emits: { spend: Spend },
    from: dropDir,
    pattern: 'spend-*.csv',
    complete: { tempSuffixes: ['.part'] },
    after: 'archive',
    once: true,
  }),
  ({ logger }) => {
    const files = dropCampaignCsvs(dropDir, data);
    logger.info(`marketing: dropped ${files.length} ad-campaign CSV exports in ${dropDir}`);
  },
);

/**
 * Orders from the relational table `marketing_orders` (PGlite in this process unless `DATABASE_URL`
 * is set): the example inserts this run's orders at start. The table is followed for good by
 * `postgresSource`; here the read ends once this run's orders are published, so a run ends.
 */
const followOrders = postgresSource({
  name: 'orders',
  emits: { order: Order },
  type: 'order',
  schema: marketing.schema,
  table: 'marketing_orders',
  key: ['id'],
  columns: ['user_id', 'campaign', 'amount'],
  body: (row) => ({ ...row, amount: Number(row.amount) }),
  setup: true,
  pollMs: 200,
});
const orders = around(
  {
    ...followOrders,
    total: marketing.orders,
    read: async function* (context: Parameters<typeof followOrders.read>[0]) {
      if (marketing.orders === 0) return;
      let n = 0;
      for await (const item of followOrders.read(context)) {
        yield item;
        if (++n >= marketing.orders) return;
      }
    },
  },
  async ({ logger }) => {
    await db.tables();
    await db.fillOrders(data);
    logger.info(`marketing: inserted ${marketing.orders} orders into ${marketing.schema}.marketing_orders`);
    if (!marketing.rscript)
      logger.warn(
        'marketing: the R campaign model is OFF: Rscript was not found. Install R (Debian: apt-get install ' +
          'r-base-core; then R -e \'install.packages("jsonlite")\' if missing) or set WARREN_RSCRIPT to ' +
          'its Rscript, and run again: the campaign-model, campaign-results, advice-db, budget-api, ' +
          'advice-files and cuts actors then run.',
      );
  },
  () => db.release(),
);

// --- Processors ----------------------------------------------------------------------------------

/** The Python propensity model: scores each session; purchase outcomes come back and train it. */
const propensity = pythonProcessor({
  name: 'propensity',
  consumes: { session: Session, outcome: Outcome },
  emits: { score: Score },
  script: join(here, 'models', 'propensity.py'),
  // One worker: the model's weights live in it, and every outcome reaches the same weights.
  workers: 1,
  batch: 32,
  description: 'Python logistic propensity model, trained online by purchase outcomes',
});

/** The R campaign model: spend and conversions per campaign, a budget advice per spend row. */
const campaignModel = rProcessor({
  name: 'campaign-model',
  consumes: { spend: Spend, order: Order, result: CampaignResult },
  emits: { advice: Advice },
  script: join(here, 'models', 'campaign.R'),
  ...(marketing.rscript ? { interpreter: marketing.rscript } : {}),
  workers: 1,
  batch: 16,
  description: 'R model: return on ad spend per campaign, budget advice; corrected by campaign results',
});

const resultsIn = { advice: Advice };
const resultsOut = { result: CampaignResult };
/** What each advice gave once applied (here: the campaign's return as advised), back to the R model. */
const campaignResults = defineProcessor({
  name: 'campaign-results',
  consumes: resultsIn,
  emits: resultsOut,
  description: 'result of each advice, fed back to the campaign model',
  machine: setup({
    types: { events: {} as Incoming<typeof resultsIn>, emitted: {} as Outgoing<typeof resultsOut> },
  }).createMachine({
    on: {
      advice: {
        actions: emit(({ event }) => ({
          type: 'result' as const,
          body: { campaign: event.body.campaign, advice: event.body.advice, roas: event.body.roas },
        })),
      },
    },
  }),
});

// --- Sinks ---------------------------------------------------------------------------------------

const out = (file: string) => join(marketing.outDir, file);
const withTables = <T extends ActorDefinition>(definition: T): T =>
  around(
    definition,
    () => db.tables(),
    () => db.release(),
  );

const sinks = [
  // By source: the raw clicks, archived as JSONL (and counted on the closing line).
  jsonlSink({
    name: 'clicks-archive',
    consumes: { click: Click },
    from: ['clickstream'],
    path: out('clicks.jsonl'),
  }),
  // By source: the raw CSV rows, archived as JSONL.
  jsonlSink({
    name: 'spend-archive',
    consumes: { spend: Spend },
    from: ['ad-exports'],
    path: out('spend.jsonl'),
  }),
  jsonlSink({ name: 'sessions', consumes: { session: Session }, path: out('sessions.jsonl') }),
  jsonlSink({ name: 'scores', consumes: { score: Score }, path: out('scores.jsonl') }),
  // By data: only likely buyers (RabbitMQ routes on the header the publisher sets from `where`).
  jsonlSink({
    name: 'hot-leads',
    consumes: { score: Score },
    from: ['propensity'],
    where: { score: { gte: 0.7 } },
    path: out('hot-leads.jsonl'),
  }),
  // By source, into PostgreSQL: each order as a conversion of its campaign.
  withTables(
    postgresSink({
      name: 'conversions-db',
      consumes: { order: Order },
      from: ['orders'],
      schema: marketing.schema,
      table: 'marketing_conversions',
      key: ['order_id'],
      row: (m) => ({
        order_id: m.body.id,
        user_id: m.body.user_id,
        campaign: m.body.campaign,
        amount: m.body.amount,
      }),
    }),
  ),
];
const rSinks = [
  withTables(
    postgresSink({
      name: 'advice-db',
      consumes: { advice: Advice },
      schema: marketing.schema,
      table: 'marketing_budget_advice',
      key: ['campaign'],
      version: 'version',
    }),
  ),
  around(
    httpSink({ name: 'budget-api', consumes: { advice: Advice }, url: () => api.url, method: 'POST' }),
    (context) => api.start(context),
    () => api.stop(),
  ),
  // One JSON file per campaign, its newest advice (`advice/<campaign>.json`, replaced whole each time).
  jsonFileSink({
    name: 'advice-files',
    consumes: { advice: Advice },
    dir: out('advice'),
    file: (m) => `${m.body.campaign}.json`,
  }),
  // By data: the campaigns to cut, for a person to look at.
  jsonlSink({
    name: 'cuts',
    consumes: { advice: Advice },
    where: { advice: { eq: 'cut' } },
    path: out('cuts.jsonl'),
  }),
];

const r = marketing.rscript !== undefined;

/**
 * The marketing pipeline: web clickstream, ad-campaign CSV drops and orders from a relational table;
 * a keyed sessionizer, a Python propensity model and an R campaign model, each fed back its outcomes;
 * JSONL and JSON files, PostgreSQL tables and an HTTP API. See docs/marketing.md.
 */
export default definePipeline({
  name: 'marketing',
  actors: [
    clicks,
    adExports,
    orders,
    sessionizer({ timeoutMs: marketing.sessionTimeoutMs, shards: 4 }),
    propensity,
    outcomes(),
    ...(r ? [campaignModel, campaignResults] : []),
    ...sinks,
    ...(r ? rSinks : []),
  ],
  // The closing line: the records of each source (each reaches its archive or table once), then what
  // each sink wrote.
  report: [
    'clicks-archive',
    'spend-archive',
    'conversions-db',
    'sessions',
    'scores',
    'hot-leads',
    ...(r ? ['advice-db', 'budget-api', 'advice-files', 'cuts'] : []),
  ],
  feedback: [
    { from: 'outcomes', type: 'outcome', to: 'propensity' },
    ...(r ? [{ from: 'campaign-results', type: 'result', to: 'campaign-model' }] : []),
  ],
  hopLimit: 8,
});
