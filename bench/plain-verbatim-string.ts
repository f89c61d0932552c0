/**
 * Measurement aid, never for production: preloaded with `--import ./bench/plain-verbatim-string.ts`, it
 * gives ioredis a `VerbatimString` that does not extend `String`. Defining any class that extends
 * `String` (ioredis 6's RESP3 `VerbatimString` does, at import) makes V8 give up its fast path for
 * `charCodeAt` on every string in the process, and the OTLP protobuf exporter's writer is a
 * `charCodeAt` loop: with this preload the bench shows what tracing costs without that. The bench's
 * flows never read a verbatim string (a RESP3 reply type warren does not ask for).
 */
import Module, { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const file = join(dirname(require.resolve('ioredis')), 'resp', 'verbatim-string.js');
class VerbatimString {
  readonly format: string;
  readonly value: string;
  constructor(format: string, value: string) {
    this.format = format;
    this.value = value;
  }
  toString(): string {
    return this.value;
  }
}
const stub = new Module(file);
stub.filename = file;
stub.loaded = true;
stub.exports = { VerbatimString };
require.cache[file] = stub;
