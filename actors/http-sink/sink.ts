import type { Span } from '@opentelemetry/api';
import { Agent, type Dispatcher, errors as undiciErrors } from 'undici';
import {
  type ConsumerDefinition,
  defineSink,
  type FieldCondition,
  type Incoming,
  type MessageSchemas,
  type RetryPolicy,
  redisClient,
  UnrecoverableError,
  WarrenError,
} from 'warren';
import { effectMachine } from '../effect-machine.ts';
import { localBucket, type RateLimiter, redisBucket } from './rate-limit.ts';
import { backoffMs, isRetryableStatus, retryAfterMs } from './retry.ts';
import { endRequestSpan, HttpAttr, startRequestSpan, withTraceHeaders } from './spans.ts';

/**
 * A header whose value comes from the environment (a token), read at start and never logged.
 *
 * @example
 * ```ts
 * headers: { Authorization: { env: 'CRM_TOKEN', prefix: 'Bearer ' } }
 * ```
 */
export interface EnvHeader {
  readonly env: string;
  readonly prefix?: string;
}

/**
 * What {@link httpSink} takes: which messages, where they go, and how hard to try.
 *
 * @example
 * ```ts
 * httpSink({ name: 'crm', consumes: { score: Score }, url: 'https://crm.example/scores',
 *   headers: { Authorization: { env: 'CRM_TOKEN', prefix: 'Bearer ' } }, rateLimit: { perSecond: 50 } });
 * ```
 */
export interface HttpSinkOptions<TName extends string, TConsumes extends MessageSchemas> {
  readonly name: TName;
  readonly consumes: TConsumes;
  /** Where to send: a URL, or one per message (its origin must be the first message's: one agent). */
  readonly url: string | ((message: Incoming<TConsumes>) => string);
  /** Default POST. */
  readonly method?: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Fixed headers, or headers from the environment (secrets): `{ env: 'API_TOKEN', prefix: 'Bearer ' }`. */
  readonly headers?: Readonly<Record<string, string | EnvHeader>>;
  /** The JSON body of a message; default its body. */
  readonly body?: (message: Incoming<TConsumes>) => unknown;
  /** The header carrying the message id, so the API applies a resent request once; default `Idempotency-Key`. */
  readonly idempotencyHeader?: string;
  /** One request's deadline (headers and body), in ms; default 10,000. */
  readonly timeoutMs?: number;
  /** Requests in flight at once in this process; default 16. */
  readonly maxInFlight?: number;
  /**
   * Attempts inside the sink for a 408, 425, 429, 5xx, timeout or network error, with a backoff from
   * `initialMs` doubling to `maxMs` (a `Retry-After` replaces it). Then (or at once, when a
   * `Retry-After` asks for longer than `maxMs`) the message fails retryably and warren's own `retry`
   * takes over through its delay queues. Default `{ attempts: 3, initialMs: 200, maxMs: 5_000 }`.
   */
  readonly attempts?: { readonly attempts?: number; readonly initialMs?: number; readonly maxMs?: number };
  /**
   * A token bucket: `perSecond` requests a second, bursts of `burst` (default 1). Kept in Redis when a
   * Redis URL is given (`redisUrl`, else the `REDIS_URL` environment variable), shared by every process
   * of the deployment under `key` (default `warren:rate:<name>`); otherwise in this process.
   */
  readonly rateLimit?: {
    readonly perSecond: number;
    readonly burst?: number;
    readonly redisUrl?: string;
    readonly key?: string;
  };
  /** Messages in hand (the prefetch); default `maxInFlight × 2`. */
  readonly concurrency?: number;
  /**
   * Whether the API applies a request once per idempotency key: then warren's own once-per-id marker is
   * skipped. Default false.
   */
  readonly idempotent?: boolean;
  readonly from?: readonly string[];
  readonly where?: Readonly<Record<string, FieldCondition>>;
  readonly retry?: Partial<RetryPolicy>;
}

const EXCERPT = 300;

/** One message's request, made before it is sent. */
interface Prepared {
  readonly id: string;
  readonly url?: string;
  readonly payload?: string;
  readonly invalid?: UnrecoverableError;
}

/** A semaphore: at most `max` holders at once, the others wait in order. */
function slots(max: number) {
  let used = 0;
  const waiting: (() => void)[] = [];
  return {
    async acquire(): Promise<() => void> {
      if (used >= max) await new Promise<void>((resolve) => waiting.push(resolve));
      else used += 1;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const next = waiting.shift();
        if (next) next();
        else used -= 1;
      };
    },
    get inUse() {
      return used;
    },
  };
}

/**
 * A sink that sends each message to an HTTP API with `undici`: the JSON body, an `Idempotency-Key`
 * with the message id (a resent request is applied once by an API that honours it), headers whose
 * secrets come from the environment (never logged). A 2xx is done. A 408, 425, 429, 5xx, timeout or
 * dropped connection is tried again inside the sink with backoff, honouring `Retry-After`, then handed
 * to warren's retry; any other answer parks the message with the status and an excerpt of the answer.
 * Requests in flight are bounded, and a token bucket (shared through Redis when there is one) keeps
 * to the API's rate.
 *
 * @example
 * ```ts
 * import { httpSink } from 'warren/actors';
 * export const crm = httpSink({
 *   name: 'crm', consumes: { score: Score }, url: 'https://crm.example/api/scores',
 *   headers: { Authorization: { env: 'CRM_TOKEN', prefix: 'Bearer ' } },
 *   rateLimit: { perSecond: 20, burst: 5 }, maxInFlight: 8,
 * });
 * ```
 */
export function httpSink<const TName extends string, TConsumes extends MessageSchemas>(
  options: HttpSinkOptions<TName, TConsumes>,
): ConsumerDefinition<'sink', TName, TConsumes, Record<never, never>> {
  const name = options.name;
  const fail = (field: string, why: string): never => {
    throw new WarrenError('WARREN_CONFIG_INVALID', `${name}: ${field}: ${why}`);
  };
  if (typeof options.url === 'string') checkUrl(options.url, (why) => fail('url', why));
  const maxInFlight = options.maxInFlight ?? 16;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const policy = {
    attempts: options.attempts?.attempts ?? 3,
    initialMs: options.attempts?.initialMs ?? 200,
    maxMs: options.attempts?.maxMs ?? 5_000,
  };
  for (const [field, value] of [
    ['maxInFlight', maxInFlight],
    ['timeoutMs', timeoutMs],
    ['attempts.attempts', policy.attempts],
  ] as const)
    if (!Number.isInteger(value) || value < 1) fail(field, 'must be a whole number ≥ 1');
  if (options.rateLimit && !(options.rateLimit.perSecond > 0)) fail('rateLimit.perSecond', 'must be > 0');
  const idempotencyHeader = options.idempotencyHeader ?? 'Idempotency-Key';
  const method = options.method ?? 'POST';
  const inFlight = slots(maxInFlight);

  let agent: Agent | undefined;
  let limiter: RateLimiter | undefined;
  let headers: Record<string, string> = {};
  /** The runtime's: aborted when it stops, so a message waiting for its next attempt goes back at once. */
  let stopping: AbortSignal | undefined;

  /** The request of a message, or why it cannot be made (never throws: it runs in the machine). */
  function prepare(message: Incoming<TConsumes>): Prepared {
    const id = message.meta.id;
    try {
      const url = typeof options.url === 'string' ? options.url : options.url(message);
      checkUrl(url, (why) => {
        throw new Error(why);
      });
      const payload = JSON.stringify(options.body ? options.body(message) : message.body) ?? 'null';
      return { id, url, payload };
    } catch (err) {
      return {
        id,
        invalid: new UnrecoverableError(`${name}: the request for ${id} could not be made: ${String(err)}`, {
          cause: err,
        }),
      };
    }
  }

  /** Runs where the message's process span is active: the request's span is its child. */
  function send(prepared: Prepared): Promise<void> {
    if (prepared.invalid) return Promise.reject(prepared.invalid);
    const url = prepared.url ?? '';
    const span = startRequestSpan(method, new URL(url), redact(url));
    return sendWithin(prepared, span).then(
      () => endRequestSpan(span),
      (err: unknown) => {
        endRequestSpan(span, err);
        throw err;
      },
    );
  }

  async function sendWithin(prepared: Prepared, span: Span): Promise<void> {
    const dispatcher = agent;
    if (!dispatcher)
      throw new WarrenError('WARREN_HANDLER_FAILED', `${name} is not started`, { retryable: true });
    const { url = '', payload = '' } = prepared;
    const requestHeaders = withTraceHeaders(span, {
      'content-type': 'application/json',
      ...headers,
      [idempotencyHeader.toLowerCase()]: prepared.id,
    });
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) span.setAttribute(HttpAttr.resendCount, attempt - 1);
      const outcome = await once(dispatcher, url, requestHeaders, payload);
      if (outcome.kind !== 'again' || outcome.status !== undefined)
        span.setAttribute(HttpAttr.status, outcome.status ?? 0);
      if (outcome.kind === 'done') return;
      if (outcome.kind === 'refused')
        throw new UnrecoverableError(
          `${name}: ${method} ${redact(url)} answered ${outcome.status}: ${outcome.excerpt}`,
          { data: { status: outcome.status } },
        );
      const wait = backoffMs(attempt, outcome.retryAfter, policy);
      const tooLong = outcome.retryAfter !== undefined && outcome.retryAfter > policy.maxMs;
      if (attempt >= policy.attempts || tooLong || stopping?.aborted)
        throw new WarrenError(
          'WARREN_HANDLER_FAILED',
          `${name}: ${method} ${redact(url)} failed ${attempt} time(s), last: ${outcome.reason}`,
          { retryable: true, data: outcome.status ? { status: outcome.status } : {} },
        );
      await pause(wait, stopping);
      if (stopping?.aborted)
        throw new WarrenError('WARREN_HANDLER_FAILED', `${name}: stopped while waiting to send again`, {
          retryable: true,
        });
    }
  }

  type Outcome =
    | { kind: 'done'; status: number }
    | { kind: 'refused'; status: number; excerpt: string }
    | { kind: 'again'; reason: string; status?: number; retryAfter?: number };

  async function once(
    dispatcher: Dispatcher,
    url: string,
    requestHeaders: Record<string, string>,
    payload: string,
  ): Promise<Outcome> {
    const release = await inFlight.acquire();
    try {
      await limiter?.take(stopping);
      const response = await dispatcher.request({
        origin: new URL(url).origin,
        path: pathOf(url),
        method,
        headers: requestHeaders,
        body: payload,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const status = response.statusCode;
      if (status >= 200 && status < 300) {
        await response.body.dump();
        return { kind: 'done', status };
      }
      const text = await readExcerpt(response.body);
      if (isRetryableStatus(status)) {
        const retryAfter = retryAfterMs(response.headers['retry-after'], Date.now());
        return {
          kind: 'again',
          reason: `status ${status}`,
          status,
          ...(retryAfter !== undefined ? { retryAfter } : {}),
        };
      }
      return { kind: 'refused', status, excerpt: text };
    } catch (err) {
      if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError)
        return { kind: 'again', reason: `no answer within ${timeoutMs} ms` };
      return { kind: 'again', reason: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
    } finally {
      release();
    }
  }

  const machine = effectMachine<TConsumes, Prepared>({ id: name, prepare, run: send });

  return defineSink({
    name,
    consumes: options.consumes,
    emits: {},
    ...(options.from ? { from: options.from } : {}),
    ...(options.where ? { where: options.where } : {}),
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.idempotent ? { idempotent: true } : {}),
    concurrency: options.concurrency ?? maxInFlight * 2,
    description: `sends ${Object.keys(options.consumes).join(', ')} to ${typeof options.url === 'string' ? redact(options.url) : 'an HTTP API'}`,
    machine,
    lifecycle: {
      async start({ logger, signal }) {
        const resolved: Record<string, string> = {};
        for (const [header, value] of Object.entries(options.headers ?? {})) {
          if (typeof value === 'string') resolved[header.toLowerCase()] = value;
          else {
            const secret = process.env[value.env];
            if (secret === undefined || secret === '')
              fail(`headers.${header}`, `the environment variable ${value.env} is not set`);
            resolved[header.toLowerCase()] = `${value.prefix ?? ''}${secret}`;
          }
        }
        headers = resolved;
        stopping = signal;
        agent = new Agent({ connections: maxInFlight, keepAliveTimeout: 10_000 });
        const rate = options.rateLimit;
        if (rate) {
          const burst = rate.burst ?? 1;
          const redisUrl = rate.redisUrl ?? process.env.REDIS_URL;
          if (redisUrl) {
            // One Redis, or a Redis Cluster when the URL lists several nodes (the bucket is one key).
            const redis = redisClient(redisUrl, {
              lazyConnect: true,
              redisOptions: { maxRetriesPerRequest: 3 },
            });
            redis.on('error', () => undefined);
            try {
              await redis.connect();
            } catch (err) {
              redis.disconnect();
              throw new WarrenError(
                'WARREN_SERVICE_UNAVAILABLE',
                `${name}: rateLimit: Redis did not answer: ${String(err)}`,
                { cause: err },
              );
            }
            limiter = redisBucket(redis, rate.key ?? `warren:rate:${name}`, rate.perSecond, burst);
          } else limiter = localBucket(rate.perSecond, burst);
        }
        logger.info(
          `${name} sends to ${typeof options.url === 'string' ? redact(options.url) : 'per-message URLs'}`,
          {
            headers: Object.keys(resolved).join(', '),
            rateLimit: rate
              ? `${rate.perSecond}/s${limiter && rate.redisUrl !== undefined ? ' (Redis)' : ''}`
              : 'none',
          },
        );
      },
      async stop() {
        const closing = agent;
        agent = undefined;
        await closing?.close();
        await limiter?.close();
        limiter = undefined;
      },
    },
  });
}

/** Waits `ms`, or less when `signal` aborts (the attempt loop then gives the message back to warren). */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function checkUrl(url: string, fail: (why: string) => void): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    fail(`not a URL: ${redact(url)}`);
    return;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    fail(`must be http or https: ${redact(url)}`);
}

function pathOf(url: string): string {
  const parsed = new URL(url);
  return `${parsed.pathname}${parsed.search}`;
}

/** The URL without credentials or query (a token in a query string must not reach a log). */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    parsed.search = '';
    return parsed.toString();
  } catch {
    return '(not a URL)';
  }
}

async function readExcerpt(
  body: AsyncIterable<Buffer | Uint8Array> & { destroy(): unknown },
): Promise<string> {
  let text = '';
  for await (const chunk of body) {
    text += Buffer.from(chunk).toString('utf8');
    if (text.length >= EXCERPT) {
      body.destroy();
      break;
    }
  }
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > EXCERPT ? `${line.slice(0, EXCERPT - 1)}…` : line || '(empty body)';
}
