import { readFileSync } from 'node:fs';
import { UsageError } from './cli-parser.ts';
import type { RootParsed } from './commands.ts';

/** `warren --version`; `warren` alone is a usage error (it shows the commands). */
export async function rootCommand({ options, path }: RootParsed): Promise<number> {
  if (!options.version) throw new UsageError(path, 'missing command');
  process.stdout.write(`${version()}\n`);
  return 0;
}

/** warren's version, from the package.json above this file (bin/ in the repository, dist/bin/ once built). */
function version(): string {
  for (const up of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'warren' && pkg.version) return pkg.version;
    } catch {
      // not there: try one level up
    }
  }
  return 'unknown';
}
