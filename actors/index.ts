/**
 * warren's built-in sources and sinks (`import { httpSource, jsonlSink } from 'warren/actors'`). Each is
 * an ordinary actor definition over the public API: nothing here could not have been written by a user.
 */
export { type HttpSourceOptions, httpSource } from './http-source.ts';
export { closeJsonlFiles, type JsonlSinkOptions, jsonlSink } from './jsonl-sink.ts';
