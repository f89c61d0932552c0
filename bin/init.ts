/**
 * `warren init`: writes a new project that uses warren, from the templates in `templates/init/` of the
 * warren package (shipped beside `dist/`, so this works from the sources and from the built package).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from 'warren';

/** What {@link initProject} takes (the flags of `warren init <dir>`). */
export interface InitOptions {
  /** The folder to write the project into; created when missing. */
  readonly dir: string;
  /**
   * The npm spec the project depends on warren with: a version range (default `^` this warren's
   * version), a tarball or folder path (relative to the current directory; written relative to the
   * project), a git URL.
   */
  readonly warren?: string | undefined;
  /** The project's package name; default the folder's name, made a valid npm name. */
  readonly name?: string | undefined;
  /** Write into a folder that is not empty (files of the same names are overwritten). */
  readonly force?: boolean | undefined;
}

/** What {@link initProject} wrote. */
export interface InitResult {
  /** The project folder, absolute. */
  readonly dir: string;
  /** The files written, relative to `dir` with `/` separators, sorted. */
  readonly files: string[];
}

/** Template files whose real name would change how npm or git treat the templates folder itself. */
const RENAMES: Readonly<Record<string, string>> = {
  '_package.json': 'package.json',
  _gitignore: '.gitignore',
};
const NPM_NAME = /^(?:@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/;
const PLACEHOLDER = /\{\{([^{}\s]+)\}\}/g;

interface WarrenManifest {
  readonly name: string;
  readonly version: string;
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly devDependencies?: Readonly<Record<string, string>>;
  readonly peerDependencies?: Readonly<Record<string, string>>;
  readonly allowScripts?: Readonly<Record<string, boolean>>;
}

/** warren's package root: the nearest folder above this module with a package.json (`bin/` or `dist/bin/`). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('warren init: cannot find the warren package root');
    dir = parent;
  }
  return dir;
}

async function filesUnder(root: string, at = ''): Promise<string[]> {
  const entries = await readdir(join(root, at), { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((entry) => {
      const path = at ? `${at}/${entry.name}` : entry.name;
      return entry.isDirectory() ? filesUnder(root, path) : [path];
    }),
  );
  return nested.flat();
}

function defaultName(dir: string): string {
  const name = basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9-._~]+/g, '-')
    .replace(/^[-._]+|[-._]+$/g, '');
  return name === '' ? 'warren-pipeline' : name.slice(0, 214);
}

/** A pipeline name (the prefix of every queue and Redis key): letters, digits, '-' and '_', from a letter. */
function pipelineName(packageName: string): string {
  const bare = (packageName.split('/').pop() ?? packageName).replace(/[^a-zA-Z0-9_-]+/g, '-');
  return (/^[a-zA-Z]/.test(bare) ? bare : `p-${bare}`).slice(0, 63);
}

const isPathSpec = (spec: string): boolean =>
  spec.startsWith('file:') ||
  /^\.{1,2}([\\/]|$)/.test(spec) ||
  isAbsolute(spec) ||
  (!spec.includes(':') && /\.(tgz|tar\.gz|tar)$/.test(spec));

/** A path spec made relative to the project (so the project can move with its tarball); others unchanged. */
function warrenSpec(spec: string, projectDir: string): { spec: string; tarball: boolean } {
  if (!isPathSpec(spec)) return { spec, tarball: false };
  const target = resolve(spec.replace(/^file:/, ''));
  if (!existsSync(target)) throw new ConfigError('warren', `no such file or folder: ${target}`);
  const path = relative(projectDir, target).split(sep).join('/');
  return { spec: `file:${path}`, tarball: statSync(target).isFile() };
}

function fill(text: string, values: ReadonlyMap<string, string>, file: string): string {
  return text.replace(PLACEHOLDER, (_, key: string) => {
    const value = values.get(key);
    if (value === undefined) throw new Error(`warren init: template ${file} has an unknown {{${key}}}`);
    return value;
  });
}

/** The project's package.json: placeholders filled inside JSON strings, so no value can break the JSON. */
function packageJson(template: string, values: ReadonlyMap<string, string>, allowScripts: object): string {
  const fillAll = (value: unknown): unknown =>
    typeof value === 'string'
      ? fill(value, values, '_package.json')
      : Array.isArray(value)
        ? value.map(fillAll)
        : value && typeof value === 'object'
          ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fillAll(v)]))
          : value;
  const manifest = fillAll(JSON.parse(template)) as Record<string, unknown>;
  return `${JSON.stringify({ ...manifest, allowScripts }, null, 2)}\n`;
}

/**
 * Write a new project that uses warren into `options.dir`: a pipeline with a source, a keyed processor
 * and a JSONL sink, a routing property test and a pipeline test on the embedded bus, `package.json`
 * (Node 24 for its npm scripts through the `node` devDependency, and the versions of TypeScript,
 * vitest, fast-check, zod and xstate that this warren is built and tested with), `tsconfig.json`,
 * README and `.gitignore`. Then `npm install && npm start && npm test` work in it, with no RabbitMQ or
 * Redis. A folder that exists and is not empty is refused unless `force` is set.
 *
 * @example
 * ```ts
 * import { initProject } from './init.ts';
 * const { dir, files } = await initProject({ dir: 'demo', warren: './warren-0.1.0.tgz' });
 * // files: ['.gitignore', 'README.md', 'actors/customer-totals.ts', ..., 'tsconfig.json']
 * ```
 */
export async function initProject(options: InitOptions): Promise<InitResult> {
  const dir = resolve(options.dir);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new ConfigError('dir', `${dir} exists and is not a folder`);
    if (!options.force && readdirSync(dir).length > 0)
      throw new ConfigError('dir', `${dir} is not empty (force, or --force, writes into it anyway)`);
  }
  const name = options.name ?? defaultName(dir);
  if (name.length > 214 || !NPM_NAME.test(name))
    throw new ConfigError('name', `${JSON.stringify(name)} is not a valid npm package name`);

  const root = packageRoot();
  const warren = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as WarrenManifest;
  const spec = warrenSpec(options.warren ?? `^${warren.version}`, dir);
  // Every package warren depends on, at the range warren uses; the templates pick theirs by name.
  const values = new Map<string, string>(
    Object.entries({ ...warren.peerDependencies, ...warren.devDependencies, ...warren.dependencies }),
  );
  values.set('name', name);
  values.set('pipeline', pipelineName(name));
  values.set('warren', spec.spec);
  // The install scripts warren's own review allowed or blocked (the project installs the same
  // packages). A tarball's `prepare` (warren's build) is not for installs: npm names a tarball in
  // allowScripts by the very spec it was installed from.
  const allowScripts = { ...warren.allowScripts, ...(spec.tarball ? { [spec.spec]: false } : {}) };

  // Every file is filled before the first is written: a bad template writes nothing.
  const templates = join(root, 'templates', 'init');
  const project = await Promise.all(
    (await filesUnder(templates)).map(async (file) => {
      const target = file
        .split('/')
        .map((part) => RENAMES[part] ?? part)
        .join('/');
      const text = await readFile(join(templates, file), 'utf8');
      const content =
        target === 'package.json' ? packageJson(text, values, allowScripts) : fill(text, values, file);
      return { target, content };
    }),
  );
  for (const { target, content } of project) {
    await mkdir(dirname(join(dir, target)), { recursive: true });
    await writeFile(join(dir, target), content);
  }
  return { dir, files: project.map((f) => f.target).sort() };
}
