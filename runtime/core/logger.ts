/**
 * Where the runtime writes what an operator should see; defaults to a JSON-lines logger on stderr.
 * The runtime calls a user's logger through {@link guardLogger}, so one that throws changes nothing.
 *
 * @example
 * ```ts
 * const logger: Logger = { info: console.log, warn: console.warn, error: console.error };
 * createRuntime(pipeline, { logger });
 * ```
 */
export interface Logger {
  info(message: string, data?: Record<string, unknown>): void;
  warn(message: string, data?: Record<string, unknown>): void;
  error(message: string, data?: Record<string, unknown>): void;
}

/**
 * Logs one JSON object per line to stderr; `quiet` keeps only warnings and errors.
 *
 * @example
 * ```ts
 * jsonLogger().warn('retrying', { actor: 'scorer' }); // {"level":"warn","time":"…","message":"retrying","actor":"scorer"}
 * ```
 */
export function jsonLogger(quiet = false): Logger {
  const write = (level: string, message: string, data?: Record<string, unknown>) =>
    process.stderr.write(`${JSON.stringify({ level, time: new Date().toISOString(), message, ...data })}\n`);
  return {
    info: (message, data) => {
      if (!quiet) write('info', message, data);
    },
    warn: (message, data) => write('warn', message, data),
    error: (message, data) => write('error', message, data),
  };
}

/**
 * A logger that never throws: a user's logger that fails (a closed stream, a bug) must not change how
 * a message ends. Its first failure is written to stderr once; later ones are dropped.
 *
 * @example
 * ```ts
 * const logger = guardLogger(options.logger ?? jsonLogger());
 * ```
 */
export function guardLogger(logger: Logger): Logger {
  let reported = false;
  const guard =
    (level: keyof Logger) =>
    (message: string, data?: Record<string, unknown>): void => {
      try {
        logger[level](message, data);
      } catch (err) {
        if (reported) return;
        reported = true;
        try {
          process.stderr.write(
            `warren: the logger threw (${err instanceof Error ? err.message : String(err)}); its failures are ignored from now on\n`,
          );
        } catch {
          // stderr itself is gone: nothing left to tell.
        }
      }
    };
  return { info: guard('info'), warn: guard('warn'), error: guard('error') };
}
