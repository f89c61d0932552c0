/**
 * The Python/R record-batch flow alone, for Node's CPU per record beside the bare-loop ceiling's, and
 * for a CPU profile of Node's side:
 *   node bench/profile-records.ts [python|r] [records] [rounds] [flow|both] [workers]
 *   node --cpu-prof --cpu-prof-dir=/tmp/warren-prof bench/profile-records.ts python 200000 2 flow
 *   node bench/profile-summary.ts /tmp/warren-prof/<file>.cpuprofile
 */
import { readFileSync } from 'node:fs';
import {
  type BenchLanguage,
  ceilingThroughput,
  pipelineThroughput,
  RECORDS_PER_MESSAGE,
} from './process-processors.ts';

const language = (process.argv[2] ?? 'python') as BenchLanguage;
const n = Number(process.argv[3] ?? 200_000);
const rounds = Number(process.argv[4] ?? 4);
/** `flow` profiles the flow alone (no ceiling rounds in the profile). */
const only = process.argv[5];
/** Worker processes (2, as the bench's figure, by default). */
const workers = Number(process.argv[6] ?? 2);
/** CPU of this process's reaped children (the workers, once stopped), in µs: /proc/self/stat's cutime + cstime. */
const childrenCpu = (): number => {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[13]) + Number(fields[14])) * 10_000; // clock ticks of 10 ms
};
const measured = async (run: () => Promise<number>): Promise<string> => {
  const before = process.cpuUsage();
  const childrenBefore = childrenCpu();
  const perSec = await run();
  const cpu = process.cpuUsage(before);
  const workers = childrenCpu() - childrenBefore;
  return `${Math.round(perSec).toLocaleString('en-US')} records/s, node ${((cpu.user + cpu.system) / n).toFixed(1)} µs/record, workers ${(workers / n).toFixed(1)} µs/record`;
};
for (let round = 1; round <= rounds; round++) {
  const flow = await measured(() => pipelineThroughput(language, n, 32, workers, RECORDS_PER_MESSAGE));
  const ceiling =
    only === 'flow'
      ? '-'
      : await measured(() => ceilingThroughput(language, n, 32, workers, RECORDS_PER_MESSAGE));
  process.stdout.write(`round ${round}: flow ${flow}; ceiling ${ceiling}\n`);
}
process.exit(0);
