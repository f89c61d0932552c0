import { parseArgs } from 'node:util';

/**
 * A small command-line parser over `node:util.parseArgs`: one table of commands, their arguments and
 * options gives both the parsing and the `--help` text, so the two cannot drift apart.
 */

/** One option of a command: `--name <value>` or a `--flag`. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** May be given more than once (`--id a --id b`); the value is then a list. */
  readonly multiple?: boolean;
  /** A boolean that also takes `--no-<name>`; left undefined when neither is given. */
  readonly negatable?: boolean;
  /** The value's placeholder in the help: `--limit <n>`. Default: the choices, or `value`. */
  readonly value?: string;
  /** The only values accepted; anything else is a usage error naming the option. */
  readonly choices?: readonly string[];
  readonly default?: string;
  /**
   * A string option whose value may be left out: `--dashboard` alone (last, or followed by another
   * option) means `--dashboard=<implicit>`.
   */
  readonly implicit?: string;
  readonly description: string;
}

/** One positional argument, in order. */
export interface ArgumentSpec<Name extends string = string> {
  readonly name: Name;
  readonly description: string;
  readonly optional?: boolean;
}

export type Options = Readonly<Record<string, OptionSpec>>;
export type Arguments = readonly ArgumentSpec[];

type OptionValue<S extends OptionSpec> = S extends { readonly type: 'boolean' }
  ? S extends { readonly negatable: true }
    ? boolean | undefined
    : boolean
  : S extends { readonly multiple: true }
    ? string[]
    : S extends { readonly default: string }
      ? string
      : string | undefined;

/** What a command's `run` gets: its options and arguments, typed from its own table entry. */
export interface Parsed<O extends Options = Options, A extends Arguments = Arguments> {
  readonly options: { readonly [K in keyof O]: OptionValue<O[K]> };
  readonly arguments: {
    readonly [P in A[number] as P['name']]: P extends { readonly optional: true }
      ? string | undefined
      : string;
  };
  /** The command's path, e.g. `['dlq', 'list']`, for messages. */
  readonly path: readonly string[];
}

/** What the parser gives any command, before its own table entry types it. */
export interface AnyParsed {
  readonly options: Readonly<Record<string, string | boolean | string[] | undefined>>;
  readonly arguments: Readonly<Record<string, string | undefined>>;
  readonly path: readonly string[];
}

/** A command as the parser sees it, with its types erased (see `defineCommand`). */
export interface Command {
  readonly name: string;
  /** One line, shown in the parent's list of commands. */
  readonly summary: string;
  /** Paragraphs shown in the command's own help, under its usage line. */
  readonly description?: string;
  readonly arguments?: Arguments;
  readonly options?: Options;
  readonly commands?: readonly Command[];
  /** Shown last in the help (exit codes, environment). */
  readonly notes?: string;
  run?(parsed: AnyParsed): Promise<number>;
}

/** A command with its options' and arguments' types kept, so `run` sees them typed. */
export interface TypedCommand<O extends Options, A extends Arguments>
  extends Omit<Command, 'run' | 'options' | 'arguments'> {
  readonly options?: O;
  readonly arguments?: A;
  run?(parsed: Parsed<O, A>): Promise<number>;
}

/** What the `run` of a command made with `defineCommand` gets. */
export type ParsedOf<C> = C extends TypedCommand<infer O, infer A> ? Parsed<O, A> : never;

/**
 * Declare a command: an identity function whose value is the typing of `run`'s options and arguments.
 *
 * @example
 * ```ts
 * defineCommand({ name: 'topology', summary: 'print the Rascal configuration',
 *   arguments: [{ name: 'pipeline', description: 'the pipeline module' }],
 *   options: { prefix: { type: 'string', description: 'queue name prefix' } },
 *   run: async ({ arguments: { pipeline }, options: { prefix } }) => 0 });
 * ```
 */
export function defineCommand<
  const O extends Options = Record<never, OptionSpec>,
  const A extends Arguments = [],
>(command: TypedCommand<O, A>): TypedCommand<O, A> {
  return command;
}

/** A wrong command line. `path` is the command whose usage to show; the process exits 2. */
export class UsageError extends Error {
  readonly path: readonly string[];
  constructor(path: readonly string[], message: string) {
    super(message);
    this.name = 'UsageError';
    this.path = path;
  }
}

/** What to do with a command line: run a command, or print a command's help. */
export type Invocation =
  | { readonly kind: 'run'; readonly command: Command; readonly parsed: AnyParsed }
  | { readonly kind: 'help'; readonly path: readonly string[] };

const HELP: OptionSpec = { type: 'boolean', short: 'h', description: 'show this help' };

/** Walk `argv` down the command table, then parse the reached command's options and arguments. */
export function parseCommandLine(root: Command, argv: readonly string[]): Invocation {
  let command = root;
  const path: string[] = [];
  let rest = [...argv];
  while (command.commands && rest[0] !== undefined && !rest[0].startsWith('-')) {
    const name = rest[0];
    const sub = command.commands.find((c) => c.name === name);
    if (!sub) throw new UsageError(path, `unknown command "${[...path, name].join(' ')}"`);
    command = sub;
    path.push(name);
    rest = rest.slice(1);
  }
  const end = rest.indexOf('--');
  if ((end < 0 ? rest : rest.slice(0, end)).some((a) => a === '--help' || a === '-h'))
    return { kind: 'help', path };
  if (!command.run) {
    const given = rest[0];
    if (given === undefined) throw new UsageError(path, 'missing command');
    if (!given.startsWith('-')) throw new UsageError(path, `unknown command "${given}"`);
  }
  const specs = command.options ?? {};
  rest = rest.map((arg, i) => {
    const spec = arg.startsWith('--') ? specs[arg.slice(2)] : undefined;
    const next = rest[i + 1];
    return spec?.implicit !== undefined && (next === undefined || next.startsWith('-'))
      ? `${arg}=${spec.implicit}`
      : arg;
  });
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      allowNegative: true,
      strict: true,
      options: {
        ...Object.fromEntries(
          Object.entries(specs).map(([name, s]) => [
            name,
            {
              type: s.type,
              ...(s.short ? { short: s.short } : {}),
              ...(s.multiple ? { multiple: true } : {}),
              ...(s.default !== undefined ? { default: s.default } : {}),
            },
          ]),
        ),
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError(path, parseErrorMessage(err));
  }
  for (const [name, s] of Object.entries(specs)) {
    const value = parsed.values[name];
    if (s.type === 'boolean' && value === false && !s.negatable && rest.includes(`--no-${name}`))
      throw new UsageError(path, `unknown option --no-${name}`);
    if (s.type === 'boolean' && value === undefined && !s.negatable) parsed.values[name] = false;
    if (s.multiple && value === undefined) parsed.values[name] = [];
    const values = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
    for (const v of values) {
      if (typeof v !== 'string') continue;
      if (s.choices && !s.choices.includes(v))
        throw new UsageError(path, `--${name} ${v}: expected ${orList(s.choices)}`);
      if (v === '') throw new UsageError(path, `--${name} needs a value`);
    }
  }
  const wanted = command.arguments ?? [];
  const args: Record<string, string | undefined> = {};
  wanted.forEach((a, i) => {
    const value = parsed.positionals[i];
    if (value === undefined && !a.optional) throw new UsageError(path, `missing <${a.name}>`);
    args[a.name] = value;
  });
  const extra = parsed.positionals[wanted.length];
  if (extra !== undefined) throw new UsageError(path, `unexpected argument "${extra}"`);
  // Options of type string give strings, booleans booleans (multiple: arrays of them): as the table says.
  const { help: _, ...options } = parsed.values as AnyParsed['options'];
  return { kind: 'run', command, parsed: { options, arguments: args, path } };
}

function parseErrorMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof Error && 'code' in err ? err.code : undefined;
  const option = /'(-[^' ]+)/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) return `unknown option ${option}`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) {
    if (message.includes('argument missing')) return `${option} needs a value`;
    if (message.includes('does not take an argument')) return `${option} takes no value`;
  }
  return message;
}

/** `a, b or c`. */
export function orList(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

/** The command at `path` in the table (the root for `[]`). */
export function commandAt(root: Command, path: readonly string[]): Command {
  let command = root;
  for (const name of path) command = command.commands?.find((c) => c.name === name) ?? command;
  return command;
}

const WIDTH = 100;

/** The help of the command at `path`, generated from its table entry. */
export function helpText(root: Command, path: readonly string[]): string {
  return render(root, path, true);
}

/** What a usage error shows: the usage line, the commands or the arguments and options, no prose. */
export function usageText(root: Command, path: readonly string[]): string {
  return render(root, path, false);
}

function render(root: Command, path: readonly string[], full: boolean): string {
  const command = commandAt(root, path);
  const name = [root.name, ...path].join(' ');
  const args = (command.arguments ?? []).map((a) => (a.optional ? `[<${a.name}>]` : `<${a.name}>`));
  const usage = command.commands
    ? `${name} <command>`
    : [name, ...args, ...(Object.keys(command.options ?? {}).length > 0 ? ['[options]'] : [])].join(' ');
  const out = [`Usage: ${usage}`];
  if (full && command.description) out.push('', wrap(command.description, WIDTH, ''));
  if (command.commands) {
    out.push('', 'Commands:', ...columns(command.commands.map((c) => [c.name, c.summary])));
  }
  if (command.arguments?.length) {
    out.push('', 'Arguments:', ...columns(command.arguments.map((a) => [`<${a.name}>`, a.description])));
  }
  const options = Object.entries({ ...command.options, help: HELP }).map(([key, s]): [string, string] => [
    optionLabel(key, s),
    s.default === undefined ? s.description : `${s.description} (default: ${s.default})`,
  ]);
  out.push('', 'Options:', ...columns(options));
  if (command.commands)
    out.push('', `Run "${name} <command> --help" for the arguments and options of a command.`);
  else if (!full) out.push('', `Run "${name} --help" for more.`);
  if (full && command.notes) out.push('', wrap(command.notes.trimEnd(), WIDTH, ''));
  return `${out.join('\n')}\n`;
}

function optionLabel(key: string, s: OptionSpec): string {
  const flag = s.negatable ? `--[no-]${key}` : `--${key}`;
  const names = s.short ? `-${s.short}, ${flag}` : `    ${flag}`;
  if (s.type === 'boolean') return names;
  const placeholder = s.value ?? (s.choices ? s.choices.join('|') : 'value');
  if (s.implicit !== undefined) return `${names} [<${placeholder}>]`;
  return `${names} <${placeholder}>${s.multiple ? '...' : ''}`;
}

function columns(rows: readonly (readonly [string, string])[]): string[] {
  const left = Math.min(32, Math.max(...rows.map(([l]) => l.length)) + 2);
  return rows.map(([l, r]) => {
    const indent = ' '.repeat(2 + left);
    const text = wrap(r, WIDTH, indent).trimStart();
    return l.length + 2 > left ? `  ${l}\n${indent}${text}` : `  ${l.padEnd(left)}${text}`;
  });
}

/** Word-wrap each paragraph of `text` to `width` columns, every line starting with `indent`. */
function wrap(text: string, width: number, indent: string): string {
  return text
    .split('\n')
    .map((paragraph) => {
      if (paragraph.startsWith('  ')) return `${indent}${paragraph}`; // preformatted: an example
      const lines: string[] = [];
      let line = indent;
      for (const word of paragraph.split(' ')) {
        if (line.length + word.length + 1 > width && line.trim() !== '') {
          lines.push(line.trimEnd());
          line = indent;
        }
        line += line === indent ? word : ` ${word}`;
      }
      lines.push(line.trimEnd());
      return lines.join('\n');
    })
    .join('\n');
}
