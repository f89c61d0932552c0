import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { FaultRecord, SinkName } from './chaos.ts';
import type { WarrenProcess } from './example-cluster.ts';
import type { ExampleOutput } from './example-output.ts';

// What a chaos run reads off its processes and files while it runs and afterwards, to explain itself.

/** Sessions closed by a timeout written so far, read incrementally (the sessions file only grows). */
export class TimeoutsTail {
  readonly #path: string;
  readonly #decoder = new StringDecoder('utf8');
  #offset = 0;
  #rest = '';
  #count = 0;

  constructor(path: string) {
    this.#path = path;
  }

  read(): number {
    if (!existsSync(this.#path)) return this.#count;
    const fd = openSync(this.#path, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size <= this.#offset) return this.#count;
      const buffer = Buffer.alloc(size - this.#offset);
      const read = readSync(fd, buffer, 0, buffer.length, this.#offset);
      this.#offset += read;
      const lines = (this.#rest + this.#decoder.write(buffer.subarray(0, read))).split('\n');
      this.#rest = lines.pop() ?? '';
      for (const line of lines) if (line.includes('"endedBy":"timeout"')) this.#count++;
      return this.#count;
    } finally {
      closeSync(fd);
    }
  }
}

/** What the workers warned about (JSON lines on stderr), by message, with a sample of each. */
export function warningsOf(processes: readonly WarrenProcess[]): string[] {
  const byMessage = new Map<string, { n: number; sample: string }>();
  for (const proc of processes) {
    for (const line of proc.stderr.split('\n')) {
      if (!line.startsWith('{')) continue;
      let message: string;
      try {
        const entry = JSON.parse(line) as { level?: unknown; message?: unknown };
        if (entry.level === 'info') continue;
        message = String(entry.message);
      } catch {
        continue;
      }
      const seen = byMessage.get(message);
      if (seen) seen.n++;
      else byMessage.set(message, { n: 1, sample: line.slice(0, 400) });
    }
  }
  return [...byMessage].map(
    ([message, { n, sample }]) => `workers warned ${n}x "${message}", e.g. ${sample}`,
  );
}

export function countLines(path: string): number {
  if (!existsSync(path)) return 0;
  const text = readFileSync(path);
  let n = 0;
  for (let i = text.indexOf(10); i !== -1; i = text.indexOf(10, i + 1)) n++;
  return n;
}

/**
 * Sink lines written again (a message id already in the file), grouped by the faults that can explain
 * each: the last one that had landed before the line was written, and any begun but not yet landed
 * then (a broker drop takes a while). A hint, not a proof. With a few of their message ids.
 */
export function rewrittenAfter(output: ExampleOutput, faults: readonly FaultRecord[]): string[] {
  const groups = new Map<string, { counts: Map<SinkName, number>; ids: string[] }>();
  const sinks: Array<[SinkName, ReadonlyArray<{ id: string }>]> = [
    ['sessions', output.sessions],
    ['scores', output.scores],
    ['high-value', output.highValue],
  ];
  const name = (f: FaultRecord) => `the ${f.kind} of worker ${f.pid} at ${(f.progress * 100).toFixed(0)}%`;
  for (const [sink, lines] of sinks) {
    const seen = new Set<string>();
    lines.forEach((line, index) => {
      if (!seen.has(line.id)) {
        seen.add(line.id);
        return;
      }
      const landed = faults.filter((f) => f.linesAtLanding[sink] <= index).at(-1);
      const underWay = faults.filter((f) => f.linesAtStart[sink] <= index && f.linesAtLanding[sink] > index);
      const when = landed
        ? `after ${name(landed)}${underWay.length > 0 ? ` (${underWay.map(name).join(', ')} under way)` : ''}`
        : underWay.length > 0
          ? `during ${underWay.map(name).join(', ')}`
          : 'before any fault';
      const group = groups.get(when) ?? { counts: new Map<SinkName, number>(), ids: [] as string[] };
      group.counts.set(sink, (group.counts.get(sink) ?? 0) + 1);
      if (group.ids.length < 3) group.ids.push(`${sink}:${line.id}`);
      groups.set(when, group);
    });
  }
  return [...groups].map(([when, { counts, ids }]) => {
    const what = [...counts].map(([sink, n]) => `${n} ${sink}`).join(', ');
    return `${when}: ${what} line(s) written again (e.g. ${ids.join(' ')})`;
  });
}
