#!/usr/bin/env node
import { helpText, parseCommandLine, UsageError, usageText } from './cli-parser.ts';
import { warren } from './commands.ts';
import { EXIT } from './exit-codes.ts';

/** The `warren` command line: every command, option and help text comes from the table in commands.ts. */
async function main(argv: readonly string[]): Promise<number> {
  const invocation = parseCommandLine(warren, argv);
  if (invocation.kind === 'help') {
    process.stdout.write(helpText(warren, invocation.path));
    return EXIT.ok;
  }
  return (await invocation.command.run?.(invocation.parsed)) ?? EXIT.usage;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  async (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`warren: ${err.message}\n\n${usageText(warren, err.path)}`);
      process.exit(EXIT.usage);
    }
    // Imported here, not at the top: `--help` and usage errors need none of the runtime.
    const { WarrenError } = await import('warren');
    const message =
      err instanceof WarrenError
        ? `${err.code}: ${err.message}`
        : err instanceof Error
          ? err.message
          : String(err);
    process.stderr.write(`warren: ${message}\n`);
    process.exit(err instanceof WarrenError && err.code.endsWith('_INVALID') ? EXIT.usage : EXIT.error);
  },
);
