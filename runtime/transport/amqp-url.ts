/**
 * Small, pure helpers for AMQP URLs: masking the password before a URL reaches an error, a log or a
 * span, and naming a connection so an operator can find it in `rabbitmqctl list_connections`.
 */

/**
 * The URL with its password replaced by `***`, safe to log. An unparseable URL is reduced to a fixed
 * placeholder rather than echoed, since it may still hold a secret we could not locate.
 *
 * @example
 * ```ts
 * maskUrl('amqp://guest:secret@127.0.0.1:5672/'); // 'amqp://guest:***@127.0.0.1:5672/'
 * ```
 */
export function maskUrl(url: string): string {
  const parsed = parse(url);
  if (parsed === null) return '<unparseable AMQP URL>';
  if (parsed.password !== '') parsed.password = '***';
  return parsed.toString();
}

/**
 * `host:port` of an AMQP URL, with the protocol's default port filled in (WHATWG `URL` drops it for
 * known schemes only, and amqp is not one of them, so both forms are normalised here).
 *
 * @example
 * ```ts
 * endpointOf('amqps://user:pw@broker.internal/vhost'); // 'broker.internal:5671'
 * ```
 */
export function endpointOf(url: string): string {
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
 * `text` with the URL's password (raw and percent-decoded) replaced by `***`: for messages of errors
 * thrown by a library that saw the URL.
 *
 * @example
 * ```ts
 * scrubPassword('login as guest:s3cret failed', 'amqp://guest:s3cret@host'); // 'login as guest:*** failed'
 * ```
 */
export function scrubPassword(text: string, url: string): string {
  const raw = parse(url)?.password ?? '';
  if (raw === '') return text;
  let decoded = raw;
  try {
    decoded = decodeURIComponent(raw);
  } catch {}
  return text.replaceAll(raw, '***').replaceAll(decoded, '***');
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
