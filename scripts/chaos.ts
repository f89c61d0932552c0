/**
 * `npm run chaos`: the example pipeline on RabbitMQ + Redis with worker processes killed (`kill -9`),
 * broker connections closed and Redis clients killed at random points of the flow; then it drains and
 * checks every effect (see test/helpers/chaos.ts and test/helpers/example-effects.ts). The last line is
 * `chaos: events=<n> lost=<l> duplicated=<d> reordered=<r> parked=<p> kills=<k> drops=<c> joins=<j> leaves=<v>`; the exit
 * code is 1 if anything was lost, duplicated or reordered, or if a fault asked for did not happen.
 *
 *   npm run chaos -- [--events 50000] [--workers 3] [--kills 5] [--broker-drops 3] [--redis-drops 2]
 *                    [--joins 2] [--leaves 2]
 *                    [--seed n] [--users n]
 *
 * Without --seed a random seed is used and printed: pass it back to replay the same clickstream and
 * fault plan (the timing of a live run never repeats exactly).
 */
import { parseArgs } from 'node:util';
import { type ChaosOptions, chaosFailures, chaosLine, runChaos } from '../test/helpers/chaos.ts';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '50000' },
    workers: { type: 'string', default: '3' },
    kills: { type: 'string', default: '5' },
    'broker-drops': { type: 'string', default: '3' },
    'redis-drops': { type: 'string', default: '2' },
    joins: { type: 'string', default: '2' },
    leaves: { type: 'string', default: '2' },
    seed: { type: 'string' },
    users: { type: 'string' },
  },
});

function count(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) {
    process.stderr.write(
      `chaos: --${flag} must be an integer of at least ${min} (got ${JSON.stringify(value)})\n`,
    );
    process.exit(2);
  }
  return n;
}

const options: ChaosOptions = {
  events: count('events', values.events, 1),
  workers: count('workers', values.workers, 1),
  kills: count('kills', values.kills, 0),
  brokerDrops: count('broker-drops', values['broker-drops'], 0),
  redisDrops: count('redis-drops', values['redis-drops'], 0),
  joins: count('joins', values.joins, 0),
  leaves: count('leaves', values.leaves, 0),
  seed: count('seed', values.seed ?? String(Math.floor(Math.random() * 2 ** 31)), 0),
  ...(values.users === undefined ? {} : { users: count('users', values.users, 1) }),
  log: (line) => process.stdout.write(`${line}\n`),
};

const result = await runChaos(options).catch((err: unknown) => {
  process.stderr.write(
    `chaos: the run itself failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(2);
});
const failures = chaosFailures(result, options);
const faults = `${result.kills} kills, ${result.brokerDrops} broker drops, ${result.redisDrops} Redis drops, ${result.joins} joins, ${result.leaves} leaves`;
const rewritten =
  result.duplicated > 0 ? `, ${result.rewrittenLines} of the duplicates sink lines written again` : '';
const verdict = failures.length > 0 ? `; FAILED: ${failures.join('; ')}` : '';
process.stdout.write(
  `chaos: ${result.seconds.toFixed(1)}s, seed ${options.seed}, ${faults}${rewritten}${verdict}\n`,
);
process.stdout.write(`${chaosLine(result)}\n`);
process.exitCode = failures.length > 0 ? 1 : 0;
