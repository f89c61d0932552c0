import type { Readable } from 'node:stream';

/**
 * One file in a watched folder, as listing or stat sees it.
 *
 * @example
 * ```ts
 * const [first]: FolderEntry[] = await folder.list(); first?.size;
 * ```
 */
export interface FolderEntry {
  /** The file's name inside the folder (no directory part). */
  readonly name: string;
  readonly size: number;
  /** Last modification, epoch ms (FTP servers give minutes at best: see each implementation). */
  readonly mtimeMs: number;
}

/**
 * The few operations a file source needs of a folder, local or remote: the one small interface behind
 * `node:fs`, SFTP (`ssh2-sftp-client`) and FTP/FTPS (`basic-ftp`). Names are relative to the folder;
 * `archive/` and `failed/` are subfolders of it. A remote implementation connects on first use and
 * reconnects on the next call after its connection dropped.
 *
 * Errors are `FolderError`s whose `kind` says what a caller can do: `gone` (the file vanished: skip
 * it), `denied` (permissions: retry later, it may be fixed), `connection` (retry with backoff).
 *
 * @example
 * ```ts
 * for (const entry of await folder.list()) if (entry.name.endsWith('.csv')) await consume(await folder.read(entry.name));
 * ```
 */
export interface Folder {
  /**
   * Where it is, for logs and message metadata, never with credentials: the absolute path of a local
   * folder (`/srv/drops`), a URL for a remote one (`sftp://drops.example.com:22/exports`).
   */
  readonly location: string;
  /** The regular files directly in the folder (not in subfolders). */
  list(): Promise<FolderEntry[]>;
  /** One file's size and mtime; `undefined` when it does not exist. */
  stat(name: string): Promise<FolderEntry | undefined>;
  /**
   * The file's bytes from `start` (default 0) as a stream; destroying the stream ends the transfer.
   * A missing file rejects the call (`gone`); a failure mid-transfer errors the stream with a
   * `FolderError`; an aborted `signal` destroys the stream with the signal's reason.
   */
  read(name: string, options?: { readonly start?: number; readonly signal?: AbortSignal }): Promise<Readable>;
  /**
   * Move a file into a subfolder (`archive`, `failed/2026`; created when missing), keeping its name
   * unless `as` is given, and replacing a file of that name there. A rename: atomic on one server.
   */
  move(name: string, subfolder: string, as?: string): Promise<void>;
  /** Write a small text file (the reason beside a failed file), replacing it if present. */
  write(name: string, text: string): Promise<void>;
  /** Delete a file; a file already gone is not an error. */
  remove(name: string): Promise<void>;
  /** Close the connection, if any. */
  close(): Promise<void>;
}
