/**
 * Names a folder takes: a file name is one path segment; a subfolder is one or more segments joined by
 * `/`. Neither may climb out of the folder (`..`), be absolute, or hold a NUL: a name listed by a remote
 * server is data, not a path to trust.
 *
 * @internal
 */
export function checkFileName(name: string): string {
  if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) {
    throw new TypeError(`not a file name in the folder: ${JSON.stringify(name)}`);
  }
  return name;
}

/** @internal See {@link checkFileName}; returns the subfolder without leading or trailing slashes. */
export function checkSubfolder(subfolder: string): string {
  const trimmed = subfolder.replace(/^\/+|\/+$/g, '');
  if (trimmed === '' || trimmed.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new TypeError(`not a subfolder of the folder: ${JSON.stringify(subfolder)}`);
  }
  if (/[\\\0]/.test(trimmed))
    throw new TypeError(`not a subfolder of the folder: ${JSON.stringify(subfolder)}`);
  return trimmed;
}

/**
 * A remote folder's `location`: scheme, host and port, and the path as a URL would give it (a path
 * relative to the login's home directory as `/~/…`); never a user name or a secret.
 *
 * @internal
 */
export function remoteLocation(scheme: string, host: string, port: number, root: string): string {
  const path = root.startsWith('/') ? root : root === '.' ? '/~' : `/~/${root.replace(/^\.\//, '')}`;
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}${path}`;
}
