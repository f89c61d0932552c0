import type { Folder } from './folders/folder.ts';
import { localFolder } from './folders/local.ts';

/**
 * The folder `from` names. Local paths only until the remote folders land.
 *
 * @internal
 */
export async function locateFolder(
  from: string,
  _env: Readonly<Record<string, string | undefined>>,
): Promise<Folder> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(from)) throw new Error(`remote folders are not supported yet: ${from}`);
  return localFolder(from);
}
