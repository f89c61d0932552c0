import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from 'warren';

/**
 * The languages warren ships a worker for; another language brings its own `command`.
 *
 * @example
 * ```ts
 * const language: WorkerLanguage = 'r';
 * createProcessPool({ script: 'models/churn.R', language });
 * ```
 */
export type WorkerLanguage = 'python' | 'r';

interface LanguageSpec {
  readonly env: string;
  readonly fallback: string;
  readonly shim: string;
  readonly install: string;
  readonly args: (shim: string) => string[];
}

const LANGUAGES: Readonly<Record<WorkerLanguage, LanguageSpec>> = {
  python: {
    env: 'WARREN_PYTHON',
    fallback: 'python3',
    shim: 'warren_worker.py',
    install:
      "install Python 3 (Debian/Ubuntu: apt-get install -y python3; macOS: brew install python) or set WARREN_PYTHON to an interpreter (a virtualenv's bin/python works)",
    // -u: the user's prints reach the log as they happen, not when a buffer fills.
    args: (shim) => ['-u', shim],
  },
  r: {
    env: 'WARREN_RSCRIPT',
    fallback: 'Rscript',
    shim: 'warren_worker.R',
    install:
      'install R and jsonlite (Debian/Ubuntu: apt-get install -y r-base-core r-cran-jsonlite; elsewhere R from CRAN, then install.packages("jsonlite")) or set WARREN_RSCRIPT to an Rscript',
    args: (shim) => ['--no-save', '--no-restore', shim],
  },
};

/** Where the shipped worker shims are: `actors/shims/` beside this folder (copied into dist by the build). */
export function shimPath(language: WorkerLanguage): string {
  return fileURLToPath(new URL(`../shims/${LANGUAGES[language].shim}`, import.meta.url));
}

/**
 * The command that starts a worker of `language`: the interpreter from the option, else from
 * `WARREN_PYTHON` / `WARREN_RSCRIPT`, else `python3` / `Rscript` on the PATH. Throws a ConfigError
 * naming the interpreter, where it came from and how to install one when it cannot be found.
 *
 * @example
 * ```ts
 * resolveCommand('python', undefined, process.env); // ['/usr/bin/python3', '-u', '.../warren_worker.py']
 * ```
 */
export function resolveCommand(
  language: WorkerLanguage,
  interpreter: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string[] {
  const spec = LANGUAGES[language];
  const fromEnv = env[spec.env];
  const [name, origin] =
    interpreter !== undefined
      ? [interpreter, 'the interpreter option']
      : fromEnv
        ? [fromEnv, spec.env]
        : [spec.fallback, `the PATH (set ${spec.env} to choose another)`];
  const found = findExecutable(name, env.PATH ?? '');
  if (!found)
    throw new ConfigError(
      interpreter !== undefined ? 'interpreter' : spec.env,
      `${language === 'r' ? 'R' : 'Python'} interpreter "${name}" not found (from ${origin}): ${spec.install}`,
    );
  return [found, ...spec.args(shimPath(language))];
}

/** A path to an executable file, or the first match of a bare name on `PATH`. */
export function findExecutable(name: string, path: string): string | undefined {
  const executable = (file: string) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (name.includes('/')) {
    const file = isAbsolute(name) ? name : resolve(name);
    return executable(file) ? file : undefined;
  }
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const file = join(dir, name);
    if (executable(file)) return file;
  }
  return undefined;
}
