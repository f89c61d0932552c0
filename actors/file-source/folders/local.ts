import { createReadStream, type Dirent } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fsError } from './errors.ts';
import type { Folder, FolderEntry } from './folder.ts';
import { checkFileName, checkSubfolder } from './names.ts';
import { relay } from './relay.ts';

/**
 * A folder on this machine's file system (`node:fs`). Its `location` is the absolute path.
 * A move is a rename, atomic on one file system; the subfolder is created when missing.
 *
 * @example
 * ```ts
 * const folder = localFolder('./drops'); // location: /srv/app/drops
 * await folder.move('orders.csv', 'archive');
 * ```
 */
export function localFolder(path: string): Folder {
  const root = resolve(path);
  const at = (name: string) => join(root, checkFileName(name));
  const context = (action: string, file?: string) => ({
    location: root,
    action,
    ...(file === undefined ? {} : { file }),
  });

  return {
    location: root,

    async list(): Promise<FolderEntry[]> {
      let dirents: Dirent[];
      try {
        dirents = await readdir(root, { withFileTypes: true });
      } catch (err) {
        throw fsError(err, context('list'));
      }
      const entries: FolderEntry[] = [];
      for (const dirent of dirents) {
        if (!dirent.isFile()) continue; // subfolders, symlinks, sockets: not ours to read
        try {
          const info = await stat(at(dirent.name));
          entries.push({ name: dirent.name, size: info.size, mtimeMs: Math.trunc(info.mtimeMs) });
        } catch (err) {
          const error = fsError(err, context('list', dirent.name));
          if (error.kind !== 'gone') throw error; // vanished between readdir and stat: not listed
        }
      }
      return entries;
    },

    async stat(name: string): Promise<FolderEntry | undefined> {
      try {
        const info = await stat(at(name));
        return info.isFile() ? { name, size: info.size, mtimeMs: Math.trunc(info.mtimeMs) } : undefined;
      } catch (err) {
        const error = fsError(err, context('stat', name));
        if (error.kind === 'gone') return undefined;
        throw error;
      }
    },

    async read(
      name: string,
      options: { readonly start?: number; readonly signal?: AbortSignal } = {},
    ): Promise<Readable> {
      const stream = createReadStream(at(name), { start: options.start ?? 0 });
      const classify = (err: unknown) => fsError(err, context('read', name));
      // Wait for the open, so a missing or unreadable file rejects here rather than in the stream.
      return new Promise<Readable>((settle, fail) => {
        const onError = (err: unknown) => fail(classify(err));
        stream.once('error', onError);
        stream.once('ready', () => {
          stream.off('error', onError);
          settle(relay(stream, classify, undefined, options.signal));
        });
      });
    },

    async move(name: string, subfolder: string, as?: string): Promise<void> {
      const into = join(root, checkSubfolder(subfolder));
      const target = join(into, checkFileName(as ?? name));
      try {
        await mkdir(into, { recursive: true });
        await rename(at(name), target);
      } catch (err) {
        throw fsError(err, context(`move to ${subfolder}/`, name));
      }
    },

    async write(name: string, text: string): Promise<void> {
      try {
        await writeFile(at(name), text);
      } catch (err) {
        throw fsError(err, context('write', name));
      }
    },

    async remove(name: string): Promise<void> {
      try {
        await rm(at(name), { force: true }); // force: a file already gone is fine
      } catch (err) {
        throw fsError(err, context('remove', name));
      }
    },

    async close(): Promise<void> {},
  };
}
