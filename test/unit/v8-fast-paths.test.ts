import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * V8 keeps fast paths for strings, arrays, promises and iterators while no code in the process has
 * changed what they rely on; it records each as a "protector". One dependency undoing one slows the
 * whole process: ioredis 6 defines `class VerbatimString extends String` when it loads, which turns
 * off the string-wrapper protector and made every `charCodeAt` loop ~7x slower (the OTLP protobuf
 * exporter's writer among them: BENCHMARKS.md, "Issue 18, tracing"). This loads everything warren
 * and its connectors load, in a fresh Node, and reads the protectors.
 */
const PROTECTORS = [
  'StringWrapperToPrimitiveProtector',
  'StringIteratorProtector',
  'NoElementsProtector',
  'ArraySpeciesProtector',
  'ArrayIteratorProtector',
  'MapIteratorProtector',
  'SetIteratorProtector',
  'PromiseSpeciesProtector',
  'RegExpSpeciesProtector',
  'TypedArraySpeciesProtector',
];
const MODULES = [
  'warren',
  'warren/actors',
  'warren/observability',
  'warren/testing',
  'ioredis',
  'rascal',
  'amqplib',
  'chokidar',
  'elkjs',
  'xstate',
  'zod',
  'fast-check',
  'pg',
  '@electric-sql/pglite',
  'ssh2-sftp-client',
  'basic-ftp',
  'csv-parse',
  'undici',
  '@opentelemetry/sdk-node',
  '@opentelemetry/exporter-trace-otlp-proto',
];

describe("V8's fast paths", () => {
  it('stay on once warren, its connectors and their dependencies are loaded', () => {
    const script = [
      `const before = { ${PROTECTORS.map((p) => `${p}: %${p}()`).join(', ')} };`,
      ...MODULES.map((m) => `await import(${JSON.stringify(m)});`),
      `const after = { ${PROTECTORS.map((p) => `${p}: %${p}()`).join(', ')} };`,
      'process.stdout.write(JSON.stringify({ before, after }));',
    ].join('\n');
    const out = execFileSync(
      process.execPath,
      ['--allow-natives-syntax', '--conditions=warren-source', '--input-type=module', '-e', script],
      { cwd: root, encoding: 'utf8' },
    );
    const { before, after } = JSON.parse(out) as Record<'before' | 'after', Record<string, boolean>>;
    const all = Object.fromEntries(PROTECTORS.map((p) => [p, true]));
    expect(before).toEqual(all); // the check itself reads what it should
    expect(after).toEqual(all);
  });
});
