// initProject from the sources: what it writes, and what it refuses. The built package's init, and the
// project it writes installed and run, are checked by package.test.ts.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WarrenError } from 'warren';
import { initProject } from '../../bin/init.ts';

const repo = join(import.meta.dirname, '../..');
const warren = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  allowScripts: Record<string, boolean>;
};
const work = mkdtempSync(join(tmpdir(), 'warren-init-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Manifest {
  name: string;
  type: string;
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  allowScripts: Record<string, boolean>;
}
const manifestOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;

describe('initProject', () => {
  it('writes a project with the versions this warren uses, every placeholder filled', async () => {
    const { dir, files } = await initProject({ dir: join(work, 'My Shop!') });
    expect(dir).toBe(join(work, 'My Shop!'));
    expect(files).toEqual([
      '.gitignore',
      'README.md',
      'actors/customer-totals.ts',
      'actors/orders.ts',
      'package.json',
      'pipeline.ts',
      'schemas.ts',
      'test/pipeline.test.ts',
      'test/routing.test.ts',
      'tsconfig.json',
    ]);
    const manifest = manifestOf(dir);
    expect(manifest.name).toBe('my-shop');
    expect(manifest.type).toBe('module');
    expect(manifest.scripts).toEqual({
      start: 'exec warren run ./pipeline.ts',
      test: 'vitest run',
      typecheck: 'tsc --noEmit',
    });
    expect(manifest.dependencies).toEqual({
      warren: `^${warren.version}`,
      xstate: warren.dependencies.xstate,
      zod: warren.dependencies.zod,
    });
    for (const name of ['node', 'typescript', 'vitest', 'fast-check', '@types/node'])
      expect(manifest.devDependencies[name], name).toBe(warren.devDependencies[name]);
    expect(manifest.devDependencies.node).toMatch(/^\^24\./);
    expect(manifest.allowScripts).toEqual(warren.allowScripts);
    expect(manifest.allowScripts.node).toBe(true);
    expect(readFileSync(join(dir, 'pipeline.ts'), 'utf8')).toContain("name: 'my-shop',");
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toMatch(/^# my-shop\n/);
    for (const file of files) expect(readFileSync(join(dir, file), 'utf8'), file).not.toMatch(/\{\{|\}\}/);
  });

  it('writes a tarball spec relative to the project, and blocks the tarball build script', async () => {
    const tarball = join(work, 'warren-9.9.9.tgz');
    writeFileSync(tarball, 'not really a tarball');
    const { dir } = await initProject({
      dir: join(work, 'nested', 'demo'),
      warren: tarball,
      name: '@me/demo',
    });
    const manifest = manifestOf(dir);
    expect(manifest.name).toBe('@me/demo');
    expect(manifest.dependencies.warren).toBe('file:../../warren-9.9.9.tgz');
    expect(manifest.allowScripts).toEqual({ ...warren.allowScripts, 'file:../../warren-9.9.9.tgz': false });
    expect(readFileSync(join(dir, 'pipeline.ts'), 'utf8')).toContain("name: 'demo',");
    // Registry and git specs are written as given.
    const git = await initProject({ dir: join(work, 'git'), warren: 'github:someone/warren#v1' });
    expect(manifestOf(git.dir).dependencies.warren).toBe('github:someone/warren#v1');
    expect(manifestOf(git.dir).allowScripts).toEqual(warren.allowScripts);
  });

  it('refuses a folder that is not empty unless forced, and then leaves other files alone', async () => {
    const dir = join(work, 'busy');
    mkdirSync(dir);
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    writeFileSync(join(dir, 'pipeline.ts'), 'old');
    const refused = initProject({ dir });
    await expect(refused).rejects.toThrow(WarrenError);
    await expect(refused).rejects.toMatchObject({ code: 'WARREN_CONFIG_INVALID', path: 'dir' });
    expect(readdirSync(dir).sort()).toEqual(['notes.txt', 'pipeline.ts']);

    await initProject({ dir, force: true });
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('mine');
    expect(readFileSync(join(dir, 'pipeline.ts'), 'utf8')).toContain('definePipeline');
  });

  it('refuses an invalid package name and a warren path that does not exist, writing nothing', async () => {
    await expect(initProject({ dir: join(work, 'bad-name'), name: 'Not Valid' })).rejects.toMatchObject({
      path: 'name',
    });
    await expect(
      initProject({ dir: join(work, 'bad-spec'), warren: join(work, 'missing.tgz') }),
    ).rejects.toMatchObject({ path: 'warren' });
    expect(readdirSync(work)).not.toContain('bad-name');
    expect(readdirSync(work)).not.toContain('bad-spec');
  });
});
