import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The layer rule of biome.json (an allow-list of imports per folder) against probe files: each probe
 * is one import from one layer, linted with the repository's own configuration in a scratch copy of
 * the layout, so the probes never sit in the tree where other runs of the linter would see them.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const BIOME = join(ROOT, 'node_modules', '.bin', 'biome');

/** [file the import is in, what it imports, whether the layers allow it]. */
const PROBES: readonly (readonly [string, string, boolean])[] = [
  ['runtime/topology/probe.ts', '../runtime.ts', false],
  ['runtime/topology/probe.ts', '../host/consumer-host.ts', false],
  ['runtime/topology/probe.ts', '../transport/memory-bus.ts', false],
  ['runtime/topology/probe.ts', '../../observability/tracing.ts', false],
  ['runtime/topology/probe.ts', '../core/errors.ts', true],
  ['runtime/topology/probe.ts', '../dead-letters.ts', false],
  ['runtime/topology/probe.ts', '../policy/restart.ts', true],
  ['runtime/topology/probe.ts', './names.ts', true],
  ['runtime/policy/probe.ts', '../state/store.ts', false],
  ['runtime/policy/probe.ts', '../topology/plan.ts', false],
  ['runtime/policy/probe.ts', '../core/clock.ts', true],
  ['runtime/routing/probe.ts', '../runtime.ts', false],
  ['runtime/state/probe.ts', '../host/stats.ts', false],
  ['runtime/core/probe.ts', '../host/stats.ts', false],
  ['runtime/core/probe.ts', './logger.ts', true],
  ['runtime/core/probe.ts', '../topology/plan.ts', false],
  ['runtime/transport/probe.ts', '../host/stats.ts', false],
  ['runtime/transport/probe.ts', '../runtime.ts', false],
  ['runtime/transport/probe.ts', '../routing/index.ts', true],
  ['observability/probe.ts', '../runtime/host/stats.ts', false],
  ['observability/probe.ts', '../runtime/runtime.ts', false],
  ['observability/probe.ts', '../runtime/core/envelope.ts', true],
  ['observability/probe.ts', '../runtime/core/observer.ts', true],
  ['config/runtime-config.ts', '../runtime/runtime.ts', false],
  ['runtime/host/probe.ts', '../runtime.ts', false],
  ['runtime/host/probe.ts', '../transport/memory-bus.ts', false],
  ['runtime/host/probe.ts', '../state/redis-store.ts', false],
  ['runtime/host/probe.ts', '../transport/transport.ts', true],
  ['runtime/host/probe.ts', '../../observability/tracing.ts', true],
  ['actors/probe.ts', '../runtime/errors.ts', false],
  ['graph/probe.ts', '../runtime/runtime.ts', false],
  ['graph/probe.ts', '../dashboard/server.ts', false],
  ['graph/probe.ts', 'node:fs', false],
  ['graph/probe.ts', '../runtime/topology/plan.ts', true],
  ['dashboard/probe.ts', '../runtime/runtime.ts', false],
  ['dashboard/probe.ts', '../runtime/transport/memory-bus.ts', false],
  ['dashboard/probe.ts', '../graph/index.ts', true],
  ['dashboard/probe.ts', '../runtime/host/stats.ts', true],
];

const scratch = mkdtempSync(join(tmpdir(), 'warren-layers-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The diagnostics biome reports for `file` importing `specifier`, with the repository's rules. */
function lint(file: string, specifier: string, n: number): { categories: string[]; messages: string[] } {
  const dir = join(scratch, String(n));
  const config = JSON.parse(readFileSync(join(ROOT, 'biome.json'), 'utf8'));
  // The scratch copy is not a git checkout: no ignore file to read.
  delete config.vcs;
  mkdirSync(dirname(join(dir, file)), { recursive: true });
  writeFileSync(join(dir, 'biome.json'), JSON.stringify(config));
  writeFileSync(join(dir, file), `import { probe } from '${specifier}';\nexport const x = probe;\n`);
  const run = spawnSync(BIOME, ['lint', '--reporter=json', file], { cwd: dir, encoding: 'utf8' });
  const report = JSON.parse(run.stdout) as {
    diagnostics: { category: string; message: string }[];
  };
  return {
    categories: report.diagnostics.map((d) => d.category),
    messages: report.diagnostics.map((d) => d.message),
  };
}

describe('layers (biome.json noRestrictedImports allow-lists)', () => {
  it.each(PROBES.map((p, n) => [...p, n] as const))(
    '%s importing %s: allowed %s',
    (file, specifier, allowed, n) => {
      const { categories } = lint(file, specifier, n);
      expect(categories.includes('lint/style/noRestrictedImports')).toBe(!allowed);
    },
  );

  it('names the layer in its message, for the upward import the issue names', () => {
    const { messages } = lint('runtime/topology/probe.ts', '../runtime.ts', PROBES.length);
    expect(messages).toEqual([expect.stringMatching(/^Layer topology is pure/)]);
  });
});
