// The package as a user gets it: `npm pack` (which builds dist/ through `prepare`), the tarball's files,
// then the BUILT `warren init` from the tarball writes a new project, in which `npm install` (from the
// tarball), `tsc`, `npm start` and `npm test` run as in a user's fresh shell.
import { type SpawnOptions, spawn } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve, sep } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = resolve(import.meta.dirname, '../..');
const manifest = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
  exports: Record<string, string | { types?: string; default?: string }>;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
};
/** The entry points users import: each must ship JavaScript and declarations. */
const ENTRY_POINTS = ['.', './testing', './observability', './actors'] as const;

/**
 * A user's fresh shell: no NODE_OPTIONS (this repository's `--conditions` from .npmrc would make warren
 * resolve to sources the tarball does not have), none of the variables npm and vitest set for this
 * run, and no node_modules/.bin of this repository on PATH (so `node` is the machine's own, and each
 * npm script finds the project's own Node 24).
 */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|VITEST)/i.test(key) || ['NODE_OPTIONS', 'NODE_ENV', 'INIT_CWD', 'TEST'].includes(key))
      continue;
    env[key] = value;
  }
  env.PATH = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => !dir.includes(`node_modules${sep}.bin`) && !dir.includes('node-gyp-bin'))
    .join(delimiter);
  return env;
}

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a command to its exit (its whole process group is killed if it outlives `timeoutMs`). */
function run(command: string, args: readonly string[], cwd: string, timeoutMs: number): Promise<Ran> {
  const options: SpawnOptions = { cwd, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true };
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, options);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${timeoutMs} ms]`;
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({
        code,
        stdout: stripVTControlCharacters(stdout),
        stderr: stripVTControlCharacters(stderr),
      });
    });
  });
}

/** Expect exit 0, showing what the command printed when it did not. */
function expectSuccess(ran: Ran, what: string): void {
  const tail = (text: string) => text.split('\n').slice(-40).join('\n');
  expect(
    ran.code,
    `${what} exited ${ran.code}\n--- stdout\n${tail(ran.stdout)}\n--- stderr\n${tail(ran.stderr)}`,
  ).toBe(0);
}

function filesUnder(root: string, at = ''): string[] {
  return readdirSync(join(root, at), { withFileTypes: true }).flatMap((entry) => {
    const path = at ? `${at}/${entry.name}` : entry.name;
    return entry.isDirectory() ? filesUnder(root, path) : [path];
  });
}

const work = mkdtempSync(join(tmpdir(), 'warren-package-'));
/** The tarball, and what it holds extracted (its `package/` folder). */
let tarball = '';
const extracted = join(work, 'package');
let packed: ReadonlySet<string> = new Set();

beforeAll(async () => {
  const started = Date.now();
  const pack = await run('npm', ['pack', '--json', '--pack-destination', work], repo, 150_000);
  expectSuccess(pack, 'npm pack');
  const [result] = JSON.parse(pack.stdout) as [{ filename: string; files: { path: string }[] }];
  tarball = join(work, result.filename);
  packed = new Set(result.files.map((f) => f.path));
  // npm pack itself built dist/ (prepare), so the tarball holds this tree's code, not an old build.
  expect(statSync(join(repo, 'dist/runtime/index.js')).mtimeMs).toBeGreaterThanOrEqual(started - 1_000);
  expectSuccess(await run('tar', ['-xzf', tarball, '-C', work], work, 60_000), 'tar -x');
}, 180_000);
afterAll(() => {
  rmSync(join(extracted, 'node_modules'), { force: true }); // the link alone, never what it points to
  rmSync(work, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('has JavaScript and declarations for every export and the bin, the Lua scripts and the templates', () => {
    const entries = Object.entries(manifest.exports).filter(([path]) => path !== './package.json');
    expect(entries.map(([path]) => path)).toEqual(expect.arrayContaining([...ENTRY_POINTS]));
    for (const [path, target] of entries) {
      expect(typeof target, path).toBe('object');
      const { types, default: js } = target as { types?: string; default?: string };
      expect(types, `${path} types`).toMatch(/^\.\/dist\/.+\.d\.ts$/);
      expect(js, `${path} default`).toMatch(/^\.\/dist\/.+\.js$/);
      expect(packed, `${path} types`).toContain(types?.slice(2));
      expect(packed, `${path} default`).toContain(js?.slice(2));
    }
    for (const bin of Object.values(manifest.bin)) expect(packed).toContain(bin.replace(/^\.\//, ''));
    expect(packed).toContain('dist/bin/init.js');
    expect(packed).toContain('dist/bin/init.d.ts');

    const lua = readdirSync(join(repo, 'runtime/state/lua')).filter((f) => f.endsWith('.lua'));
    expect(lua.length).toBeGreaterThan(0);
    for (const file of lua) expect(packed).toContain(`dist/runtime/state/lua/${file}`);
    // The Python and R worker shims, beside the pool that starts them.
    for (const file of ['warren_worker.py', 'warren_worker.R'])
      expect(packed).toContain(`dist/actors/shims/${file}`);
    for (const file of ['pool', 'worker', 'frames', 'interpreter', 'processor', 'errors'])
      expect(packed).toContain(`dist/actors/process-pool/${file}.js`);
    const templates = filesUnder(join(repo, 'templates/init'));
    expect(templates).toContain('_package.json');
    for (const file of templates) expect(packed).toContain(`templates/init/${file}`);
  });

  it("names only dist/ in its manifest's exports, and leaves the repository's manifest as it was", () => {
    const packedManifest = JSON.parse(readFileSync(join(extracted, 'package.json'), 'utf8')) as {
      exports: Record<string, unknown>;
    };
    const targets = Object.values(packedManifest.exports).flatMap((t) =>
      typeof t === 'string' ? [t] : Object.values(t as Record<string, string>),
    );
    expect(targets.filter((t) => t !== './package.json' && !/^\.\/dist\/.+\.(js|d\.ts)$/.test(t))).toEqual(
      [],
    );
    expect(JSON.stringify(packedManifest)).not.toContain('warren-source');
    // The repository keeps its source condition (put back by postpack) and no copy is left behind.
    expect(readFileSync(join(repo, 'package.json'), 'utf8')).toContain('"warren-source"');
    expect(existsSync(join(repo, '.package.json.unpacked'))).toBe(false);
  });

  it('has nothing else: no tests, no TypeScript sources outside the templates, no source maps', () => {
    const stray = [...packed].filter(
      (path) =>
        !/^(package\.json|README\.md|LICENSE)$/.test(path) &&
        !/^dist\/(runtime|observability|actors|bin|config|graph|dashboard)\/.+\.(js|d\.ts|lua)$/.test(path) &&
        !/^dist\/actors\/shims\/warren_worker\.(py|R)$/.test(path) &&
        !path.startsWith('templates/init/'),
    );
    expect(stray).toEqual([]);
    expect(
      [...packed].filter((path) => /(^|\/)(test|example)s?\//.test(path) && !path.startsWith('templates/')),
    ).toEqual([]);
  });

  it('imports no package at run time that it does not depend on', () => {
    const declared = new Set([
      'warren',
      ...Object.keys(manifest.dependencies),
      ...Object.keys(manifest.peerDependencies),
    ]);
    const undeclared: string[] = [];
    for (const file of filesUnder(join(extracted, 'dist')).filter((f) => f.endsWith('.js'))) {
      const code = readFileSync(join(extracted, 'dist', file), 'utf8');
      // Static imports and re-exports (no quote, '=' or ';' between the keyword and `from`), side-effect
      // imports, dynamic imports of a literal.
      const imports =
        /^(?:import|export)\s[^;=`'"]*?\bfrom\s*'([^']+)'|^import\s*'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/gm;
      for (const [, a, b, c] of code.matchAll(imports)) {
        const specifier = a ?? b ?? c ?? '';
        if (specifier.startsWith('.') || specifier.startsWith('node:')) continue;
        const name = specifier
          .split('/')
          .slice(0, specifier.startsWith('@') ? 2 : 1)
          .join('/');
        if (!declared.has(name)) undeclared.push(`dist/${file}: ${specifier}`);
      }
    }
    expect(undeclared).toEqual([]);
  });
});

describe('a project made by the built `warren init`', () => {
  it('installs, typechecks with skipLibCheck false, runs (`npm start`) and passes its tests (`npm test`)', async () => {
    // The built CLI from the tarball, its dependencies found in this repository's node_modules (the
    // project's own install below installs them from the registry), on the node of the user's PATH.
    symlinkSync(join(repo, 'node_modules'), join(extracted, 'node_modules'), 'dir');
    const npmInstall = ['install', '--prefer-offline', '--no-audit', '--no-fund'];

    const demo = join(work, 'demo');
    const cli = join(extracted, manifest.bin.warren ?? 'missing bin');
    const scaffold = await run('node', [cli, 'init', demo, '--warren', tarball], work, 60_000);
    expectSuccess(scaffold, 'warren init');
    expect(scaffold.stdout).toContain('created demo:\n');
    for (const file of ['package.json', 'tsconfig.json', 'pipeline.ts', 'README.md', '.gitignore'])
      expect(scaffold.stdout).toContain(`  ${file}\n`);
    expect(scaffold.stdout).toContain('cd demo && npm install && npm start && npm test');

    // Every entry point, imported by Node from the installed package, exports what the sources export;
    // tsc below checks the same file against the shipped declarations.
    writeFileSync(
      join(demo, 'check-exports.ts'),
      `import type { PipelineDefinition, Runtime } from 'warren';
import * as warren from 'warren';
import type { JsonlSinkOptions } from 'warren/actors';
import * as actors from 'warren/actors';
import * as observability from 'warren/observability';
import type { RouteAnswer } from 'warren/testing';
import * as testing from 'warren/testing';

export type Used = [PipelineDefinition, Runtime, JsonlSinkOptions<'x', Record<string, never>>, RouteAnswer];
const names = (module: object) => Object.keys(module).sort();
process.stdout.write(JSON.stringify({ '.': names(warren), './testing': names(testing), './observability': names(observability), './actors': names(actors) }));
`,
    );

    const install = await run('npm', npmInstall, demo, 150_000);
    expectSuccess(install, 'npm install in the new project');
    // Every install script of the project's packages is reviewed in its allowScripts (warren's own
    // review, copied by init). The one exception: npm matches a tarball's entry only once a lockfile
    // names it, so a first install from a tarball lists warren's `prepare`, which it does not run anyway.
    const unreviewed = [...install.stderr.matchAll(/^npm warn install-scripts +(\S+)@\S+ \(/gm)].map(
      (m) => m[1],
    );
    expect(unreviewed.filter((name) => name !== 'warren')).toEqual([]);

    const exported = await run(join(demo, 'node_modules/.bin/node'), ['check-exports.ts'], demo, 60_000);
    expectSuccess(exported, 'importing every entry point');
    const sources = {
      '.': await import('../../runtime/index.ts'),
      './testing': await import('../../runtime/testing.ts'),
      './observability': await import('../../observability/index.ts'),
      './actors': await import('../../actors/index.ts'),
    };
    const expected = Object.fromEntries(
      Object.entries(sources).map(([path, m]) => [path, Object.keys(m).sort()]),
    );
    expect(JSON.parse(exported.stdout)).toEqual(expected);

    expectSuccess(await run('npx', ['tsc', '--noEmit'], demo, 90_000), 'tsc --noEmit in the new project');

    const start = await run('npm', ['start'], demo, 90_000);
    expectSuccess(start, 'npm start');
    expect(start.stdout.trim().split('\n').at(-1)).toMatch(/^done: 200 events, 200 totals in \d+\.\ds$/);
    expect(readFileSync(join(demo, 'out/totals.jsonl'), 'utf8').trim().split('\n')).toHaveLength(200);

    // The picture, drawn by the built CLI (elkjs from the installed dependencies).
    const bin = join(demo, 'node_modules/warren', manifest.bin.warren ?? 'missing bin');
    const graph = await run(
      join(demo, 'node_modules/.bin/node'),
      [bin, 'graph', 'pipeline.ts'],
      demo,
      60_000,
    );
    expectSuccess(graph, 'warren graph');
    expect(graph.stdout).toMatch(/^<svg /);
    expect(graph.stdout).toContain('>totals</text>');
    expect(graph.stdout.endsWith('</svg>\n')).toBe(true);

    const test = await run('npm', ['test'], demo, 120_000);
    expectSuccess(test, 'npm test');
    expect(test.stdout).toMatch(/Test Files\s+2 passed \(2\)/);
    expect(Number(/Tests\s+(\d+) passed/.exec(test.stdout)?.[1])).toBeGreaterThanOrEqual(5);
  }, 300_000);
});
