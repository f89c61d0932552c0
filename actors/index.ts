/**
 * warren's built-in sources and sinks (`import { httpSource, jsonlSink } from 'warren/actors'`). Each is
 * an ordinary actor definition over the public API: nothing here could not have been written by a user.
 */

export { type BatchSchema, batchOf, type RecordBatch } from './file-source/batch.ts';
export { FolderError, type FolderErrorKind } from './file-source/folders/errors.ts';
export type { Folder, FolderEntry } from './file-source/folders/folder.ts';
export { type FolderOptions, openFolder } from './file-source/folders/open.ts';
export type { FileCompletion, FileSourceOptions } from './file-source/options.ts';
export type { CsvOptions, FileEncoding, FileFormat } from './file-source/records.ts';
export { fileSource } from './file-source/source.ts';
export { type EnvHeader, type HttpSinkOptions, httpSink } from './http-sink/sink.ts';
export { type HttpSourceOptions, httpSource } from './http-source.ts';
export { type JsonFileSinkOptions, jsonFileSink } from './json-file-sink.ts';
export { closeJsonlFiles, type JsonlSinkOptions, jsonlSink } from './jsonl-sink.ts';
export type { DatabaseOptions } from './postgres/database.ts';
export { type PostgresSinkOptions, postgresSink } from './postgres/sink.ts';
export { type PostgresSourceOptions, postgresSource, postgresSourceSetupSql } from './postgres/source.ts';
export { ProcessPoolError, type ProcessPoolErrorKind, WorkerCodeError } from './process-pool/errors.ts';
export type { WorkerLanguage } from './process-pool/interpreter.ts';
export {
  type CallInput,
  type CallMeta,
  createProcessPool,
  type ProcessPool,
  type ProcessPoolOptions,
  type ProcessPoolStats,
} from './process-pool/pool.ts';
export type { ProcessProcessor, ProcessProcessorOptions } from './process-pool/processor.ts';
export { pythonProcessor } from './python-processor.ts';
export { rProcessor } from './r-processor.ts';
