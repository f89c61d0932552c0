/**
 * Small, pure helpers for AMQP URLs: masking the password before a URL reaches an error, a log or a
 * span, and naming a connection so an operator can find it in `rabbitmqctl list_connections`.
 */

/**
 * The URLs of a `RABBITMQ_URL` that lists several brokers (a cluster's nodes), separated by commas; a
 * single URL gives a list of one. A comma splits only where the next URL begins (`<scheme>://`), so a
 * comma inside a password never cuts a URL in two. Keep in step with `config/runtime-config.ts`.
 *
 * @example
 * ```ts
 * brokerUrls('amqp://a:5672, amqp://b:5672'); // ['amqp://a:5672', 'amqp://b:5672']
 * ```
 */
export function brokerUrls(list: string): string[] {
  return list
    .split(/,(?=\s*[a-z][a-z0-9+.-]*:\/\/)/i)
    .map((url) => url.trim())
    .filter((url) => url !== '');
}

/**
 * The URL (or each URL of a list) with its password replaced by `***`, safe to log. An unparseable URL is reduced to a fixed
 * placeholder rather than echoed, since it may still hold a secret we could not locate.
 *
 * @example
 * ```ts
 * maskUrl('amqp://guest:secret@127.0.0.1:5672/'); // 'amqp://guest:***@127.0.0.1:5672/'
 * ```
 */
export function maskUrl(url: string): string {
  const urls = brokerUrls(url);
  if (urls.length > 1) return urls.map(maskUrl).join(',');
  const parsed = parse(url);
  if (parsed === null) return '<unparseable AMQP URL>';
  if (parsed.password !== '') parsed.password = '***';
  return parsed.toString();
}

/**
 * `host:port` of an AMQP URL (of each URL of a list, comma-separated), with the protocol's default port
 * filled in (WHATWG `URL` drops it for known schemes only, and amqp is not one of them, so both forms
 * are normalised here).
 *
 * @example
 * ```ts
 * endpointOf('amqps://user:pw@broker.internal/vhost'); // 'broker.internal:5671'
 * ```
 */
export function endpointOf(url: string): string {
  const urls = brokerUrls(url);
  if (urls.length > 1) return urls.map(endpointOf).join(',');
  const parsed = parse(url);
  if (parsed === null) return '<unknown>';
  const port = parsed.port === '' ? (parsed.protocol === 'amqps:' ? '5671' : '5672') : parsed.port;
  return `${parsed.hostname}:${port}`;
}

/**
 * A copy of `url` with query parameters set, for the connection options amqplib reads only from the
 * URL (e.g. `heartbeat`). Returns the input unchanged when there is nothing to set.
 *
 * @example
 * ```ts
 * withQuery('amqp://localhost', { heartbeat: 10 }); // 'amqp://localhost?heartbeat=10'
 * ```
 */
export function withQuery(url: string, params: Readonly<Record<string, number | undefined>>): string {
  const parsed = parse(url);
  const entries = Object.entries(params).filter((e): e is [string, number] => e[1] !== undefined);
  if (parsed === null || entries.length === 0) return url;
  for (const [key, value] of entries) parsed.searchParams.set(key, String(value));
  return parsed.toString();
}

/**
 * `text` with the URL's password (raw and percent-decoded; every URL's of a list) replaced by `***`:
 * for messages of errors thrown by a library that saw the URL.
 *
 * @example
 * ```ts
 * scrubPassword('login as guest:s3cret failed', 'amqp://guest:s3cret@host'); // 'login as guest:*** failed'
 * ```
 */
export function scrubPassword(text: string, url: string): string {
  const urls = brokerUrls(url);
  if (urls.length > 1) return urls.reduce((scrubbed, one) => scrubPassword(scrubbed, one), text);
  const raw = parse(url)?.password ?? '';
  if (raw === '') return text;
  let decoded = raw;
  try {
    decoded = decodeURIComponent(raw);
  } catch {}
  return text.replaceAll(raw, '***').replaceAll(decoded, '***');
}

/**
 * An AMQP URL as amqplib's object form of `connect` takes it, every field present (`undefined` where
 * the URL says nothing), so that assigning it over an earlier endpoint leaves nothing of that one
 * behind. Credentials are percent-decoded, as amqplib decodes them from a URL string; the vhost is
 * left encoded, as amqplib decodes it; the query parameters amqplib reads (`heartbeat`, `frameMax`,
 * `channelMax`, `locale`) become fields, `heartbeat` overridden when given. Undefined for a URL that
 * does not parse.
 *
 * @example
 * ```ts
 * connectOptionsOf('amqp://guest:guest@127.0.0.1:5673/%2F', 10)?.port; // 5673
 * ```
 */
export function connectOptionsOf(url: string, heartbeat?: number): ConnectEndpoint | undefined {
  const parsed = parse(url);
  if (parsed === null || (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:')) return undefined;
  const secure = parsed.protocol === 'amqps:';
  const query = (key: string): number | undefined => {
    const value = parsed.searchParams.get(key);
    return value === null || value === '' ? undefined : Number.parseInt(value, 10);
  };
  const given = parsed.username !== '' || parsed.password !== '';
  return {
    protocol: secure ? 'amqps' : 'amqp',
    hostname: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: parsed.port === '' ? (secure ? 5671 : 5672) : Number(parsed.port),
    // amqplib logs in as guest/guest only when both are absent, as it does for a URL string.
    username: given ? decode(parsed.username) : undefined,
    password: given ? decode(parsed.password) : undefined,
    vhost: parsed.pathname.length > 1 ? parsed.pathname.slice(1) : undefined,
    heartbeat: heartbeat ?? query('heartbeat'),
    frameMax: query('frameMax'),
    channelMax: query('channelMax'),
    locale: parsed.searchParams.get('locale') ?? undefined,
  };
}

/** What {@link connectOptionsOf} gives: amqplib's `Options.Connect` with every field spelled out. */
export interface ConnectEndpoint {
  protocol: 'amqp' | 'amqps';
  hostname: string;
  port: number;
  username: string | undefined;
  password: string | undefined;
  vhost: string | undefined;
  heartbeat: number | undefined;
  frameMax: number | undefined;
  channelMax: number | undefined;
  locale: string | undefined;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

let connectionCounter = 0;

/**
 * A connection name unique within this process and recognisable across processes, shown by the
 * management UI and `rabbitmqctl list_connections name`.
 *
 * @example
 * ```ts
 * connectionName('publisher'); // 'warren-publisher-4242-1'
 * ```
 */
export function connectionName(role: string): string {
  connectionCounter += 1;
  return `warren-${role}-${process.pid}-${connectionCounter}`;
}

function parse(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}
