import { relative } from 'node:path';
import type { InitParsed } from './commands.ts';
import { EXIT } from './exit-codes.ts';

/** `warren init <dir>`: scaffold a project (see `initProject`), then say what was written and what next. */
export async function initCommand({ arguments: args, options }: InitParsed): Promise<number> {
  const { initProject } = await import('./init.ts');
  const { dir, files } = await initProject({
    dir: args.dir,
    ...(options.warren !== undefined ? { warren: options.warren } : {}),
    ...(options.name !== undefined ? { name: options.name } : {}),
    force: options.force,
  });
  const shown = relative(process.cwd(), dir) || '.';
  process.stdout.write(`created ${shown}:\n${files.map((f) => `  ${f}\n`).join('')}`);
  process.stdout.write(`\nnext:\n  cd ${quote(shown)} && npm install && npm start && npm test\n`);
  return EXIT.ok;
}

/** A path as a POSIX shell reads it back. */
function quote(path: string): string {
  return /^[\w./-]+$/.test(path) ? path : `'${path.replaceAll("'", "'\\''")}'`;
}
