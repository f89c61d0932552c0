// The package.json that goes into the tarball: `npm pack` and `npm publish` run `prepack` (strip)
// before they pack and `postpack` (restore) after. The repository runs its TypeScript sources through
// the `warren-source` export condition (.npmrc, tsconfig, vitest); the tarball holds only dist/, so its
// manifest must not name those .ts files. The original is kept beside it and put back afterwards.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

const MANIFEST = 'package.json';
const KEPT = '.package.json.unpacked';
const CONDITION = 'warren-source';

function strip(): void {
  if (existsSync(KEPT)) restore(); // a pack that died half-way left its copy: start from the original
  const text = readFileSync(MANIFEST, 'utf8');
  const manifest = JSON.parse(text) as { exports?: Record<string, unknown> };
  for (const target of Object.values(manifest.exports ?? {}))
    if (typeof target === 'object' && target !== null) delete (target as Record<string, unknown>)[CONDITION];
  writeFileSync(KEPT, text);
  writeFileSync(MANIFEST, `${JSON.stringify(manifest, null, 2)}\n`);
}

function restore(): void {
  if (existsSync(KEPT)) renameSync(KEPT, MANIFEST);
}

const mode = process.argv[2];
if (mode === 'strip') strip();
else if (mode === 'restore') restore();
else {
  process.stderr.write('usage: node scripts/pack-manifest.ts strip|restore\n');
  process.exit(2);
}
