import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { ActorLifecycle, ActorLifecycleContext } from 'warren';
import { type Database, type DatabaseOptions, openDatabase } from '../../actors/postgres/database.ts';
import { generateOrders, type MarketingData } from './data.ts';

/** Run `before` ahead of an actor's own start and `after` behind its own stop. */
export function around<T extends { readonly lifecycle?: ActorLifecycle }>(
  definition: T,
  before: (context: ActorLifecycleContext) => Promise<void> | void,
  after?: () => Promise<void> | void,
): T {
  const own = definition.lifecycle;
  return {
    ...definition,
    lifecycle: {
      async start(context) {
        await before(context);
        await own?.start?.(context);
      },
      async stop() {
        try {
          await own?.stop?.();
        } finally {
          await after?.();
        }
      },
    },
  };
}

/** The tables of the example, created (if missing) in `schema` before any database actor starts. */
function tablesSql(schema: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${schema}.marketing_orders (
       id serial PRIMARY KEY, user_id text NOT NULL, campaign text NOT NULL,
       amount numeric(10, 2) NOT NULL CHECK (amount >= 0), placed_at timestamptz NOT NULL DEFAULT now())`,
    `CREATE TABLE IF NOT EXISTS ${schema}.marketing_conversions (
       order_id integer PRIMARY KEY, user_id text NOT NULL, campaign text NOT NULL, amount double precision NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${schema}.marketing_budget_advice (
       campaign text PRIMARY KEY, day text NOT NULL, spend double precision NOT NULL, conversions integer NOT NULL,
       revenue double precision NOT NULL, roas double precision NOT NULL, advice text NOT NULL,
       budget double precision NOT NULL, version integer NOT NULL)`,
  ];
}

/**
 * The example's own handle on the database (PGlite in this process unless `DATABASE_URL` is set): it
 * creates the tables once, fills the orders table for the process that hosts the orders source, and
 * stays open until the last database actor of this process stopped (a PGlite in memory lives as long as
 * one handle on it does).
 */
export class ExampleDatabase {
  #db: Promise<Database> | undefined;
  #tables: Promise<void> | undefined;
  #users = 0;

  readonly options: DatabaseOptions;
  readonly schema: string;

  constructor(options: DatabaseOptions, schema: string) {
    this.options = options;
    this.schema = schema;
  }

  #open(): Promise<Database> {
    this.#db ??= openDatabase('marketing-setup', this.options);
    return this.#db;
  }

  /** Create the tables (serialised across worker processes by an advisory lock). */
  async tables(): Promise<void> {
    this.#users += 1;
    this.#tables ??= (async () => {
      const db = await this.#open();
      await db.transaction(async (tx) => {
        await tx.query(`SELECT pg_advisory_xact_lock(hashtext('warren-marketing-setup'))`);
        await tx.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
        for (const sql of tablesSql(this.schema)) await tx.query(sql);
      });
    })();
    await this.#tables;
  }

  /** Insert this run's orders: what the orders source then reads. */
  async fillOrders(data: MarketingData): Promise<void> {
    const db = await this.#open();
    const rows = generateOrders(data);
    await db.transaction(async (tx) => {
      for (const row of rows)
        await tx.query(
          `INSERT INTO ${this.schema}.marketing_orders (user_id, campaign, amount) VALUES ($1, $2, $3)`,
          [row.user_id, row.campaign, row.amount],
        );
    });
  }

  async release(): Promise<void> {
    this.#users -= 1;
    if (this.#users > 0 || !this.#db) return;
    const db = this.#db;
    this.#db = undefined;
    this.#tables = undefined;
    await (await db).close();
  }
}

/**
 * The budget API the advice is posted to: a local receiver on 127.0.0.1 (port 0), unless a URL is given.
 * Answers 204 to every POST and counts them.
 */
export class BudgetApi {
  #server: Server | undefined;
  #url: string | undefined;
  received = 0;

  readonly given: string | undefined;

  constructor(given: string | undefined) {
    this.given = given;
  }

  get url(): string {
    const url = this.given ?? this.#url;
    if (!url) throw new Error('the budget API receiver is not started');
    return url;
  }

  async start(context: ActorLifecycleContext): Promise<void> {
    if (this.given) return;
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.method === 'POST') this.received += 1;
        res.writeHead(req.method === 'POST' ? 204 : 405).end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('the receiver has no port');
    this.#server = server;
    this.#url = `http://127.0.0.1:${address.port}/budget-advice`;
    context.logger.info(`marketing: the budget API receiver listens on ${this.#url}`);
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The Rscript the R model would run, if it runs: `WARREN_RSCRIPT`, else `Rscript` on the PATH. */
export function findRscript(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  const rscript = env.WARREN_RSCRIPT || 'Rscript';
  const probe = spawnSync(rscript, ['--version'], { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0 ? rscript : undefined;
}
