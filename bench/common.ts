/**
 * What every bench variant shares: the payload, the in-flight window, the latency recorder, CPU
 * accounting for this process, the broker and Redis, and clean-up of the names a round declared.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import amqplib from 'amqplib';
import { Redis } from 'ioredis';

export const RABBITMQ_URL = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The body every variant carries: `t` is `performance.now()` at the producer's publish (one process). */
export interface Payload {
  readonly i: number;
  readonly t: number;
  readonly user: string;
  readonly pad: string;
}

/** Filler that brings a body to ~200 bytes of JSON. */
const PAD = 'x'.repeat(140);

export function payload(i: number, keys: number): Payload {
  return { i, t: performance.now(), user: `user-${i % keys}`, pad: PAD };
}

/** What one variant is asked to do in one round. */
export interface RoundSpec {
  /** Messages through the pipeline. */
  readonly n: number;
  /** Most messages in the pipeline at once (published by the producer, not yet received by the sink). */
  readonly inFlight: number;
  /** Distinct keys of the keyed variants. */
  readonly keys: number;
  /** How long a round may take before it is abandoned. */
  readonly timeoutMs: number;
}

/** What one round measured. Times in ms; CPU in µs per message. */
export interface RoundResult {
  readonly msgPerSec: number;
  readonly p50: number;
  readonly p99: number;
  readonly nodeCpu: number;
  readonly brokerCpu: number;
  readonly redisCpu: number;
  /** Parked, retried or duplicate messages reported by warren; 0 for the baselines. */
  readonly anomalies: number;
}

/**
 * The pipeline's in-flight bound: the producer takes a slot before each publish, the sink gives it back
 * on receipt. One producer, so one waiter at most.
 */
export class Window {
  readonly #limit: number;
  #inFlight = 0;
  #wake: (() => void) | undefined;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** undefined when a slot was free (no promise, no tick), else a promise of the next free slot. */
  acquire(): Promise<void> | undefined {
    if (this.#inFlight < this.#limit) {
      this.#inFlight++;
      return undefined;
    }
    return new Promise<void>((resolve) => {
      this.#wake = resolve;
    }).then(() => this.acquire());
  }

  release(): void {
    this.#inFlight--;
    const wake = this.#wake;
    if (wake) {
      this.#wake = undefined;
      wake();
    }
  }
}

/** Latencies as the sink sees them, and the moment the last of `n` arrived. */
export class Recorder {
  readonly #latencies: Float64Array;
  readonly #window: Window;
  #count = 0;
  #started = 0;
  #finished = 0;
  readonly done: Promise<void>;
  #resolve: () => void = () => undefined;

  constructor(n: number, window: Window) {
    this.#latencies = new Float64Array(n);
    this.#window = window;
    this.done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  get count(): number {
    return this.#count;
  }

  /** Called by the producer before its first publish. */
  start(): void {
    if (this.#started === 0) this.#started = performance.now();
  }

  /** Called by the sink with the body's `t`. */
  record(t: number): void {
    const now = performance.now();
    this.#window.release();
    if (this.#count >= this.#latencies.length) return;
    this.#latencies[this.#count++] = now - t;
    if (this.#count === this.#latencies.length) {
      this.#finished = now;
      this.#resolve();
    }
  }

  summary(): { msgPerSec: number; p50: number; p99: number } {
    const sorted = this.#latencies.slice(0, this.#count).sort();
    const seconds = (this.#finished - this.#started) / 1000;
    return {
      msgPerSec: this.#count / seconds,
      p50: quantile(sorted, 0.5),
      p99: quantile(sorted, 0.99),
    };
  }
}

export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index] as number;
}

export function median(values: readonly number[]): number {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 === 1
    ? (finite[mid] as number)
    : ((finite[mid - 1] as number) + (finite[mid] as number)) / 2;
}

/** Resolve `done`, or reject after `ms` naming what was still missing. */
export async function within<T>(done: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what()}`)), ms);
  });
  try {
    return await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A unique name prefix per round, so nothing collides with tests or other runs. */
export function uniquePrefix(variant: string): string {
  return `bench-${variant}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** CPU time (user + system, clock ticks at 100 Hz) of the shared RabbitMQ and Redis, read from /proc. */
export class ServiceCpu {
  readonly #broker: number | undefined;
  readonly #redis: number | undefined;

  constructor() {
    const processes = listProcesses();
    // The shared broker is the oldest RabbitMQ node (fault tests start private ones later).
    this.#broker = processes
      .filter((p) => p.cmdline.includes('beam.smp') && p.cmdline.includes('rabbit boot'))
      .sort((a, b) => a.start - b.start)[0]?.pid;
    this.#redis = processes.find(
      (p) => p.cmdline.startsWith('redis-server') && p.cmdline.includes(':6379'),
    )?.pid;
  }

  /** µs of CPU so far, per service (undefined when it cannot be read). */
  sample(): { broker: number | undefined; redis: number | undefined } {
    return { broker: cpuMicros(this.#broker), redis: cpuMicros(this.#redis) };
  }
}

interface ProcessInfo {
  readonly pid: number;
  readonly cmdline: string;
  readonly start: number;
}

function listProcesses(): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const stat = statFields(Number(entry));
      out.push({ pid: Number(entry), cmdline, start: Number(stat?.[19] ?? 0) });
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/** Fields of /proc/<pid>/stat after the command name (so field 14, utime, is index 11). */
function statFields(pid: number): string[] | undefined {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

function cpuMicros(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const fields = statFields(pid);
    return (Number(fields?.[11]) + Number(fields?.[12])) * 10_000;
  } catch {
    return undefined;
  }
}

/** CPU spent by this process and the services over a round, per message. */
export class CpuMeter {
  readonly #services: ServiceCpu;
  #node = process.cpuUsage();
  #before = { broker: undefined as number | undefined, redis: undefined as number | undefined };

  constructor(services: ServiceCpu) {
    this.#services = services;
  }

  start(): void {
    this.#node = process.cpuUsage();
    this.#before = this.#services.sample();
  }

  perMessage(n: number): { nodeCpu: number; brokerCpu: number; redisCpu: number } {
    const node = process.cpuUsage(this.#node);
    const after = this.#services.sample();
    const diff = (a: number | undefined, b: number | undefined) =>
      a === undefined || b === undefined ? Number.NaN : (a - b) / n;
    return {
      nodeCpu: (node.user + node.system) / n,
      brokerCpu: diff(after.broker, this.#before.broker),
      redisCpu: diff(after.redis, this.#before.redis),
    };
  }
}

/** Delete the queues and exchanges a round declared, on a short-lived connection. */
export async function deleteBrokerNames(
  queues: readonly string[],
  exchanges: readonly string[],
): Promise<void> {
  const connection = await amqplib.connect(RABBITMQ_URL);
  try {
    const channel = await connection.createChannel();
    for (const queue of queues) await channel.deleteQueue(queue);
    for (const exchange of exchanges) await channel.deleteExchange(exchange);
    await channel.close();
  } finally {
    await connection.close();
  }
}

/** Delete every Redis key under `prefix:`. */
export async function deleteRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
}

/** A logger for the runtime that keeps quiet but counts (and shows the first few) warnings. */
export function benchLogger(): {
  warnings: () => number;
  logger: {
    info(): void;
    warn(message: string, data?: Record<string, unknown>): void;
    error(message: string, data?: Record<string, unknown>): void;
  };
} {
  let count = 0;
  const show = (level: string, message: string, data?: Record<string, unknown>) => {
    count++;
    if (count <= 3) process.stderr.write(`  [${level}] ${message} ${JSON.stringify(data ?? {})}\n`);
  };
  return {
    warnings: () => count,
    logger: {
      info: () => undefined,
      warn: (message, data) => show('warn', message, data),
      error: (message, data) => show('error', message, data),
    },
  };
}
