/**
 * `openFolder`: which folder a `from` names, and the errors of a bad one (each naming its field,
 * none echoing a secret). Nothing here connects: remote folders connect on first use.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from 'warren';
import { FolderError, fsError, ftpError, sftpError } from '../../actors/file-source/folders/errors.ts';
import { listDate } from '../../actors/file-source/folders/ftp.ts';
import { type FolderOptions, openFolder } from '../../actors/file-source/folders/open.ts';

function refused(from: string | FolderOptions, env: Record<string, string> = {}): ConfigError {
  try {
    openFolder(from, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`openFolder(${JSON.stringify(from)}) did not throw`);
}

describe('openFolder: where', () => {
  it.each([
    ['./drops', resolve('drops')],
    ['drops/in', resolve('drops/in')],
    ['/srv/drops', '/srv/drops'],
    ['file:///srv/drops', '/srv/drops'],
    ['file:///srv/ad%20exports', '/srv/ad exports'],
  ])('opens %s as the local folder %s', (from, location) => {
    expect(openFolder(from, {}).location).toBe(location);
  });

  it.each([
    ['sftp://ads@drops.example.com/exports', 'sftp://drops.example.com:22/exports'],
    ['sftp://ads@drops.example.com:2222/exports/', 'sftp://drops.example.com:2222/exports'],
    ['sftp://ads@drops.example.com/~/exports', 'sftp://drops.example.com:22/~/exports'],
    ['sftp://ads@drops.example.com/~', 'sftp://drops.example.com:22/~'],
    ['sftp://ads@[::1]:2222/x', 'sftp://[::1]:2222/x'],
    ['ftp://ads@ftp.example.com/exports', 'ftp://ftp.example.com:21/exports'],
    ['ftps://ads@ftp.example.com:990/ad%20exports', 'ftps://ftp.example.com:990/ad exports'],
    ['ftp://ftp.example.com/pub', 'ftp://ftp.example.com:21/pub'],
  ])('opens %s at %s, without the user', (from, location) => {
    const folder = openFolder(from, { WARREN_SFTP_PASSWORD: 'pw-sftp', WARREN_FTP_PASSWORD: 'pw-ftp' });
    expect(folder.location).toBe(location);
  });

  it('takes the options object form', () => {
    const env = { DROPS_PASSWORD: 'pw' };
    expect(openFolder({ protocol: 'file', path: '/srv/drops' }, env).location).toBe('/srv/drops');
    expect(
      openFolder(
        {
          protocol: 'sftp',
          host: 'h',
          port: 2022,
          username: 'u',
          path: '/in',
          passwordEnv: 'DROPS_PASSWORD',
        },
        env,
      ).location,
    ).toBe('sftp://h:2022/in');
    expect(
      openFolder(
        { protocol: 'sftp', host: 'h', username: 'u', path: 'in', privateKeyPath: '/run/secrets/key' },
        {},
      ).location,
    ).toBe('sftp://h:22/~/in');
    expect(
      openFolder(
        {
          protocol: 'ftps',
          host: 'h',
          username: 'u',
          path: '/in',
          caPath: '/ca.pem',
          passwordEnv: 'DROPS_PASSWORD',
        },
        env,
      ).location,
    ).toBe('ftps://h:21/in');
  });

  it('takes non-secret settings from the query string, a base64 fingerprint with its + included', () => {
    const plus = 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3t+2s';
    expect(
      openFolder(`sftp://u@h/in?privateKeyPath=/run/secrets/key&hostFingerprint=${plus}`, {}).location,
    ).toBe('sftp://h:22/in');
    expect(openFolder('sftp://u@h/in?passwordEnv=MY_PW', { MY_PW: 'x' }).location).toBe('sftp://h:22/in');
    expect(
      openFolder('ftps://u@h/in?rejectUnauthorized=false&maxConnections=2', { WARREN_FTP_PASSWORD: 'x' })
        .location,
    ).toBe('ftps://h:21/in');
    expect(openFolder('sftp://u@h/in', { WARREN_SFTP_KEY_PATH: '/run/secrets/key' }).location).toBe(
      'sftp://h:22/in',
    );
  });
});

describe('openFolder: refusals', () => {
  it('refuses a password in a URL, without echoing it, and says where a password goes', () => {
    for (const from of ['sftp://ads:hunter2@h/x', 'ftp://ads:hunter2@h/x', 'ftps://ads:hunter2@h/x']) {
      const err = refused(from);
      expect(err.path).toBe('from');
      expect(err.message).toMatch(/password in the URL is refused.*WARREN_(S)?FTP_PASSWORD/);
      expect(`${err.message} ${JSON.stringify(err.data)}`).not.toContain('hunter2');
    }
  });

  it('refuses a remote folder without credentials, naming what to set', () => {
    expect(refused('sftp://ads@h/x').message).toMatch(/WARREN_SFTP_PASSWORD.*privateKeyPath/);
    expect(refused('sftp://ads@h/x').path).toBe('from.passwordEnv');
    expect(refused('ftp://ads@h/x').message).toMatch(/WARREN_FTP_PASSWORD/);
    expect(refused('sftp://h/x', { WARREN_SFTP_PASSWORD: 'pw' }).path).toBe('from.username');
  });

  it('refuses a named password variable that is not set', () => {
    const err = refused('sftp://u@h/x?passwordEnv=DROPS_PW', { WARREN_SFTP_PASSWORD: 'pw' });
    expect(err.path).toBe('from.passwordEnv');
    expect(err.message).toContain('DROPS_PW is not set');
  });

  it.each([
    ['http://h/x', 'from', /unknown scheme http/],
    ['', 'from', /must not be empty/],
    ['sftp://u@h/x?password=pw', 'from?password', /unknown parameter/],
    ['sftp://u@h/x?hostFingerprint=MD5:aa', 'from.hostFingerprint', /SHA256/],
    ['ftps://u@h/x?rejectUnauthorized=maybe', 'from?rejectUnauthorized', /true or false/],
    ['ftp://h/x?maxConnections=0', 'from.maxConnections', /integer from 1/],
    ['sftp://u@h/x#frag', 'from', /fragment/],
  ])('refuses %s naming %s', (from, path, message) => {
    const err = refused(from, { WARREN_SFTP_PASSWORD: 'pw', WARREN_FTP_PASSWORD: 'pw' });
    expect(err.path).toBe(path);
    expect(err.message).toMatch(message);
  });

  it.each([
    [{ protocol: 'http', path: '/x' }, 'from.protocol'],
    [{ protocol: 'file', path: '' }, 'from.path'],
    [{ protocol: 'file', path: '/x', host: 'h' }, 'from.host'],
    [{ protocol: 'sftp', host: '', username: 'u', path: '/x' }, 'from.host'],
    [{ protocol: 'sftp', host: 'h', port: 70_000, username: 'u', path: '/x' }, 'from.port'],
    [{ protocol: 'sftp', host: 'h', port: 22.5, username: 'u', path: '/x' }, 'from.port'],
    [{ protocol: 'sftp', hots: 'h', username: 'u', path: '/x' }, 'from.hots'],
    [{ protocol: 'sftp', host: 'h', username: 'u', path: '/x', password: 'pw' }, 'from.password'],
    [{ protocol: 'ftp', host: 'h', path: '/x', caPath: '/ca.pem' }, 'from.caPath'],
    [{ protocol: 'ftps', host: 'h', path: '/x', rejectUnauthorized: 'no' }, 'from.rejectUnauthorized'],
  ])('refuses the options %j naming %s', (options, path) => {
    const err = refused(options as unknown as FolderOptions, { WARREN_SFTP_PASSWORD: 'pw' });
    expect(err.path).toBe(path);
  });

  it('refuses a password given as an option, pointing to the environment', () => {
    const err = refused({
      protocol: 'sftp',
      host: 'h',
      username: 'u',
      path: '/x',
      password: 'hunter2',
    } as unknown as FolderOptions);
    expect(err.message).toMatch(/environment.*passwordEnv/);
    expect(err.message).not.toContain('hunter2');
  });
});

describe('FTP LIST dates (the fallback when a server has neither MLSD nor MDTM)', () => {
  const now = Date.UTC(2026, 10, 29, 12, 0);
  it.each([
    ['Nov 28 09:15', Date.UTC(2026, 10, 28, 9, 15)],
    ['Dec 30 23:59', Date.UTC(2025, 11, 30, 23, 59)], // would be in the future this year: last year
    ['Mar  4  2024', Date.UTC(2024, 2, 4)],
    ['11-28-26 09:15PM', Date.UTC(2026, 10, 28, 21, 15)],
    ['11-28-26 12:05AM', Date.UTC(2026, 10, 28, 0, 5)],
    ['yesterday', 0],
  ])('reads %s', (raw, expected) => {
    expect(listDate({ rawModifiedAt: raw }, now)).toBe(expected);
  });
});

describe('folder errors: what each library error means to a caller', () => {
  const context = { location: 'sftp://h:22/in', file: 'a.csv', action: 'read' };
  const error = (message: string, code?: string | number) => Object.assign(new Error(message), { code });

  it.each([
    [fsError, error('no such file', 'ENOENT'), 'gone'],
    [fsError, error('not a directory', 'ENOTDIR'), 'gone'],
    [fsError, error('permission denied', 'EACCES'), 'denied'],
    [fsError, error('operation not permitted', 'EPERM'), 'denied'],
    [fsError, error('i/o error', 'EIO'), 'connection'],
    [sftpError, error('No such file', 2), 'gone'],
    [sftpError, error('_xstat: No such file: /in/a.csv', 'ENOENT'), 'gone'],
    [sftpError, error('Permission denied', 3), 'denied'],
    [
      sftpError,
      error('getConnection: All configured authentication methods failed', 'ERR_GENERIC_CLIENT'),
      'denied',
    ],
    [sftpError, error('getConnection: Host denied (verification failed)', 'ERR_GENERIC_CLIENT'), 'denied'],
    [sftpError, error('No response from server'), 'connection'],
    [sftpError, error('connect ECONNREFUSED 127.0.0.1:22', 'ECONNREFUSED'), 'connection'],
    [ftpError, error('550 No such file or directory', 550), 'gone'],
    [ftpError, error('551 ENOENT: no such file or directory, open', 551), 'gone'],
    [ftpError, error('450 File not found', 450), 'gone'],
    [ftpError, error('550 Permission denied', 550), 'denied'],
    [ftpError, error('530 Login incorrect', 530), 'denied'],
    [ftpError, error('421 Too many connections', 421), 'connection'],
    [ftpError, error('Server closed connection unexpectedly.'), 'connection'],
    [ftpError, error('read ECONNRESET', 'ECONNRESET'), 'connection'],
  ] as const)('%o: %s is %s', (classify, err, kind) => {
    const folderError = classify(err, context);
    expect(folderError).toBeInstanceOf(FolderError);
    expect(folderError.kind).toBe(kind);
    expect(folderError.retryable).toBe(kind !== 'gone');
    expect(folderError.cause).toBe(err);
    expect(folderError.message).toContain('a.csv in sftp://h:22/in: read failed');
  });

  it('keeps a FolderError as it is', () => {
    const original = new FolderError('gone', 'vanished', { location: '/srv/drops', file: 'x.csv' });
    expect(ftpError(original, context)).toBe(original);
  });
});
