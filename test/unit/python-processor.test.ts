import { describe, it } from 'vitest';
import {
  keyedOrderCase,
  killCase,
  mixedCase,
  poisonCase,
  stopCase,
  timeoutCase,
} from '../helpers/process-cases.ts';
import { recordBatchCase } from '../helpers/process-record-batches.ts';
import { uniquePrefix } from '../helpers/services.ts';

describe('pythonProcessor on the embedded bus', () => {
  it('emits what score() returns, logs a stray print, retries then parks an exception, parks a rejection and invalid outputs', () =>
    mixedCase('python', 'memory', uniquePrefix('py')));
  it('stops a call past its deadline, replaces the worker, retries, then parks the message', () =>
    timeoutCase('python', 'memory', uniquePrefix('py')));
  it('finds the record that crashes its worker inside a batch and parks it as worker-crash', () =>
    poisonCase('python', 'memory', uniquePrefix('py')));
  it('runs again what a worker killed with kill -9 mid-batch held, once', () =>
    killCase('python', 'memory', uniquePrefix('py')));
  it('finishes the batch in hand when stopped during it', () =>
    stopCase('python', 'memory', uniquePrefix('py')));
  it('keeps per-key order in a keyed processor: one message of a key at a time', () =>
    keyedOrderCase('python', 'memory', uniquePrefix('py')));
  it('calls each record of a record batch, emits batches numbered by record, parks a bad record alone', () =>
    recordBatchCase('python', 'memory', uniquePrefix('py')));
});
