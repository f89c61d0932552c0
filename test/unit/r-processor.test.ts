import { describe, it } from 'vitest';
import { killCase, mixedCase, poisonCase, stopCase, timeoutCase } from '../helpers/process-cases.ts';
import { recordBatchCase } from '../helpers/process-record-batches.ts';
import { uniquePrefix } from '../helpers/services.ts';

describe('rProcessor on the embedded bus', () => {
  it('emits what score <- function() returns, logs a stray print, retries then parks an exception, parks a rejection and invalid outputs', () =>
    mixedCase('r', 'memory', uniquePrefix('r')));
  it('stops a call past its deadline, replaces the worker, retries, then parks the message', () =>
    timeoutCase('r', 'memory', uniquePrefix('r')));
  it('finds the record that crashes its worker inside a batch and parks it as worker-crash', () =>
    poisonCase('r', 'memory', uniquePrefix('r')));
  it('runs again what a worker killed with kill -9 mid-batch held, once', () =>
    killCase('r', 'memory', uniquePrefix('r')));
  it('finishes the batch in hand when stopped during it', () => stopCase('r', 'memory', uniquePrefix('r')));
  it('calls each record of a record batch, emits batches numbered by record, parks a bad record alone', () =>
    recordBatchCase('r', 'memory', uniquePrefix('r')));
});
