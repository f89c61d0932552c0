import { fileURLToPath } from 'node:url';
import { ConfigError } from 'warren';
import type { Folder } from './folder.ts';
import { ftpFolder } from './ftp.ts';
import { localFolder } from './local.ts';
import { sftpFolder } from './sftp.ts';

/**
 * A folder described as an object: what `openFolder` takes besides a string. Secrets are never
 * values here: a password comes from the environment variable `passwordEnv` names (default
 * `WARREN_SFTP_PASSWORD` / `WARREN_FTP_PASSWORD`), an SSH key from `privateKeyPath`.
 *
 * @example
 * ```ts
 * const from: FolderOptions = { protocol: 'sftp', host: 'drops.example.com', username: 'ads', privateKeyPath: '/run/secrets/key', path: '/exports' };
 * ```
 */
export type FolderOptions =
  | { readonly protocol: 'file'; readonly path: string }
  | {
      readonly protocol: 'sftp';
      readonly host: string;
      /** Default 22. */
      readonly port?: number;
      readonly username: string;
      readonly path: string;
      /** The environment variable holding the password; default `WARREN_SFTP_PASSWORD`. */
      readonly passwordEnv?: string;
      /** A private key file (OpenSSH or PEM); default the environment's `WARREN_SFTP_KEY_PATH`. */
      readonly privateKeyPath?: string;
      /** The environment variable holding the key's passphrase; default `WARREN_SFTP_PASSPHRASE`. */
      readonly passphraseEnv?: string;
      /** The server's host key fingerprint, `SHA256:…`; when given, another key is refused. */
      readonly hostFingerprint?: string;
      readonly connectTimeoutMs?: number;
    }
  | {
      readonly protocol: 'ftp' | 'ftps';
      readonly host: string;
      /** Default 21. */
      readonly port?: number;
      /** Default `anonymous` (no password needed). */
      readonly username?: string;
      readonly path: string;
      /** The environment variable holding the password; default `WARREN_FTP_PASSWORD`. */
      readonly passwordEnv?: string;
      /** FTPS: check the server's certificate; default true. */
      readonly rejectUnauthorized?: boolean;
      /** FTPS: a CA certificate file (PEM) to check the server's certificate against. */
      readonly caPath?: string;
      readonly maxConnections?: number;
      readonly timeoutMs?: number;
    };

type Env = Readonly<Record<string, string | undefined>>;

const KNOWN: Record<FolderOptions['protocol'], readonly string[]> = {
  file: ['protocol', 'path'],
  sftp: [
    'protocol',
    'host',
    'port',
    'username',
    'path',
    'passwordEnv',
    'privateKeyPath',
    'passphraseEnv',
    'hostFingerprint',
    'connectTimeoutMs',
  ],
  ftp: ['protocol', 'host', 'port', 'username', 'path', 'passwordEnv', 'maxConnections', 'timeoutMs'],
  ftps: [
    'protocol',
    'host',
    'port',
    'username',
    'path',
    'passwordEnv',
    'rejectUnauthorized',
    'caPath',
    'maxConnections',
    'timeoutMs',
  ],
};

/** Settings a URL may carry in its query string (none of them secret). */
const QUERY: Record<'sftp' | 'ftp' | 'ftps', readonly string[]> = {
  sftp: ['passwordEnv', 'privateKeyPath', 'passphraseEnv', 'hostFingerprint', 'connectTimeoutMs'],
  ftp: ['passwordEnv', 'maxConnections', 'timeoutMs'],
  ftps: ['passwordEnv', 'rejectUnauthorized', 'caPath', 'maxConnections', 'timeoutMs'],
};

/**
 * The folder `from` names, checked at once (a bad option throws a `ConfigError` naming the field);
 * remote folders connect only on first use.
 *
 * - a path (`./drops`, `/srv/drops`) or a `file:///srv/drops` URL: a local folder;
 * - `sftp://user@host:22/exports`: SFTP, the password from `WARREN_SFTP_PASSWORD` or a key file
 *   (`?privateKeyPath=/run/secrets/key`, or `WARREN_SFTP_KEY_PATH`);
 * - `ftp://user@host:21/exports`, `ftps://…` (explicit TLS): the password from `WARREN_FTP_PASSWORD`;
 *   no user means anonymous.
 *
 * A URL's path is absolute; `/~/exports` starts at the login's home directory. A password in a URL
 * is refused (it would end up in configs, logs and shell history). Query parameters carry the
 * non-secret options (`passwordEnv`, `hostFingerprint`, `caPath`, `rejectUnauthorized`, …).
 *
 * @example
 * ```ts
 * openFolder('sftp://ads@drops.example.com/exports?hostFingerprint=SHA256:abc…', process.env);
 * openFolder({ protocol: 'ftps', host: 'ftp.example.com', username: 'ads', path: '/exports', caPath: '/etc/ssl/ftp-ca.pem' });
 * ```
 */
export function openFolder(from: string | FolderOptions, env: Env = process.env): Folder {
  if (typeof from === 'string') return openUrl(from, env);
  if (typeof from !== 'object' || from === null) {
    throw new ConfigError('from', 'must be a folder path, an sftp:// or ftp(s):// URL, or folder options');
  }
  return openOptions(from, env, 'from');
}

function openUrl(from: string, env: Env): Folder {
  if (from.trim() === '') throw new ConfigError('from', 'must not be empty');
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(from)?.[1]?.toLowerCase();
  if (scheme === undefined) return localFolder(from); // a path (Windows' C:\… included)
  if (scheme === 'file') {
    try {
      return localFolder(fileURLToPath(from));
    } catch (err) {
      throw new ConfigError(
        'from',
        `not a local file URL: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
  if (scheme !== 'sftp' && scheme !== 'ftp' && scheme !== 'ftps') {
    throw new ConfigError(
      'from',
      `unknown scheme ${scheme}:// (a path, file://, sftp://, ftp:// or ftps://)`,
    );
  }
  let url: URL;
  try {
    url = new URL(from);
  } catch {
    // Never echo the text: it may hold a password.
    throw new ConfigError('from', `not a valid ${scheme}:// URL`);
  }
  if (url.password !== '') {
    const variable = scheme === 'sftp' ? 'WARREN_SFTP_PASSWORD' : 'WARREN_FTP_PASSWORD';
    throw new ConfigError(
      'from',
      `a password in the URL is refused (it would show in configs and logs): remove it and set ${variable}, or name another variable with ?passwordEnv=`,
    );
  }
  if (url.hash !== '') throw new ConfigError('from', 'a #fragment means nothing here');
  const options: Record<string, unknown> = {
    protocol: scheme,
    host: url.hostname.replace(/^\[|\]$/g, ''),
    path: urlPath(url.pathname),
  };
  if (url.port !== '') options.port = Number(url.port);
  if (url.username !== '') options.username = decodeURIComponent(url.username);
  for (const [key, raw] of url.searchParams) {
    if (!QUERY[scheme].includes(key)) {
      throw new ConfigError(`from?${key}`, `unknown parameter (known: ${QUERY[scheme].join(', ')})`);
    }
    // `+` in a base64 fingerprint reads as a space in a query string.
    const value = key === 'hostFingerprint' ? raw.replace(/ /g, '+') : raw;
    options[key] = /Ms$|^maxConnections$/.test(key)
      ? Number(value)
      : key === 'rejectUnauthorized'
        ? booleanParam(`from?${key}`, value)
        : value;
  }
  return openOptions(options as FolderOptions, env, 'from');
}

function urlPath(pathname: string): string {
  const path = decodeURIComponent(pathname);
  if (path === '' || path === '/') return '/';
  if (path === '/~' || path === '/~/') return '.';
  if (path.startsWith('/~/')) return path.slice(3);
  return path;
}

function booleanParam(field: string, value: string): boolean {
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new ConfigError(field, `must be true or false, got ${JSON.stringify(value)}`);
}

function openOptions(options: FolderOptions, env: Env, at: string): Folder {
  const field = (name: string) => `${at}.${name}`;
  const record = options as unknown as Record<string, unknown>;
  const protocol = record.protocol;
  if (protocol !== 'file' && protocol !== 'sftp' && protocol !== 'ftp' && protocol !== 'ftps') {
    throw new ConfigError(field('protocol'), "must be 'file', 'sftp', 'ftp' or 'ftps'");
  }
  for (const key of Object.keys(record)) {
    if (key === 'password' || key === 'passphrase') {
      throw new ConfigError(
        field(key),
        `secrets are not options: set it in the environment and name the variable with ${key}Env`,
      );
    }
    if (!KNOWN[protocol].includes(key)) {
      throw new ConfigError(
        field(key),
        `unknown option for ${protocol} (known: ${KNOWN[protocol].join(', ')})`,
      );
    }
  }
  const path = text(record.path, field('path'));
  if (options.protocol === 'file') return localFolder(path);

  const host = text(options.host, field('host'));
  const port = integer(options.port, field('port'), 1, 65_535);
  if (options.protocol === 'sftp') {
    const username = text(options.username, field('username'));
    const password = secret(env, options.passwordEnv, 'WARREN_SFTP_PASSWORD', field('passwordEnv'));
    const privateKeyPath = optionalText(
      options.privateKeyPath ?? env.WARREN_SFTP_KEY_PATH,
      field('privateKeyPath'),
    );
    const passphrase = secret(env, options.passphraseEnv, 'WARREN_SFTP_PASSPHRASE', field('passphraseEnv'));
    if (password === undefined && privateKeyPath === undefined) {
      throw new ConfigError(
        field('passwordEnv'),
        'no credentials for sftp: set WARREN_SFTP_PASSWORD (or the variable passwordEnv names), or give privateKeyPath',
      );
    }
    const hostFingerprint = optionalText(options.hostFingerprint, field('hostFingerprint'));
    if (hostFingerprint !== undefined && !/^SHA256:[A-Za-z0-9+/]{43}=?$/.test(hostFingerprint)) {
      throw new ConfigError(
        field('hostFingerprint'),
        'must be SHA256:<43 base64 characters>, as ssh-keygen -l prints it',
      );
    }
    const connectTimeoutMs = integer(options.connectTimeoutMs, field('connectTimeoutMs'), 1, 600_000);
    return sftpFolder({
      host,
      username,
      path,
      ...(port === undefined ? {} : { port }),
      ...(password === undefined ? {} : { password }),
      ...(privateKeyPath === undefined ? {} : { privateKeyPath }),
      ...(passphrase === undefined ? {} : { passphrase }),
      ...(hostFingerprint === undefined ? {} : { hostFingerprint }),
      ...(connectTimeoutMs === undefined ? {} : { connectTimeoutMs }),
    });
  }

  const username = optionalText(options.username, field('username'));
  const password = secret(env, options.passwordEnv, 'WARREN_FTP_PASSWORD', field('passwordEnv'));
  if (username !== undefined && username !== 'anonymous' && password === undefined) {
    throw new ConfigError(
      field('passwordEnv'),
      `no password for ${options.protocol} user ${username}: set WARREN_FTP_PASSWORD (or the variable passwordEnv names)`,
    );
  }
  const secure = options.protocol === 'ftps';
  const rejectUnauthorized = secure ? options.rejectUnauthorized : undefined;
  if (rejectUnauthorized !== undefined && typeof rejectUnauthorized !== 'boolean') {
    throw new ConfigError(field('rejectUnauthorized'), 'must be true or false');
  }
  const caPath = secure ? optionalText(options.caPath, field('caPath')) : undefined;
  const maxConnections = integer(options.maxConnections, field('maxConnections'), 1, 100);
  const timeoutMs = integer(options.timeoutMs, field('timeoutMs'), 1, 600_000);
  return ftpFolder({
    host,
    path,
    secure,
    ...(port === undefined ? {} : { port }),
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    ...(rejectUnauthorized === undefined ? {} : { rejectUnauthorized }),
    ...(caPath === undefined ? {} : { caPath }),
    ...(maxConnections === undefined ? {} : { maxConnections }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
}

function text(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.trim() === '')
    throw new ConfigError(field, 'must be a non-empty string');
  return value;
}

function optionalText(value: unknown, field: string): string | undefined {
  return value === undefined ? undefined : text(value, field);
}

function integer(value: unknown, field: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(field, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** A secret from the environment: the variable `named` names (which must then be set), else `fallback`'s. */
function secret(env: Env, named: unknown, fallback: string, field: string): string | undefined {
  if (named === undefined) {
    const value = env[fallback];
    return value === undefined || value === '' ? undefined : value;
  }
  const variable = text(named, field);
  const value = env[variable];
  if (value === undefined || value === '')
    throw new ConfigError(field, `the environment variable ${variable} is not set`);
  return value;
}
