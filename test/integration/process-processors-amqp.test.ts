import { describe, it } from 'vitest';
import { keyedOrderCase, killCase, mixedCase, poisonCase, stopCase } from '../helpers/process-cases.ts';
import { recordBatchCase } from '../helpers/process-record-batches.ts';
import { uniquePrefix } from '../helpers/services.ts';

describe('pythonProcessor on RabbitMQ and Redis', () => {
  it('emits what score() returns, logs a stray print, retries then parks an exception, parks a rejection and invalid outputs', () =>
    mixedCase('python', 'amqp', uniquePrefix('py-amqp')));
  it('runs again what a worker killed with kill -9 mid-batch held, once', () =>
    killCase('python', 'amqp', uniquePrefix('py-amqp')));
  it('keeps per-key order in a keyed processor: one message of a key at a time', () =>
    keyedOrderCase('python', 'amqp', uniquePrefix('py-amqp')));
  it('finishes the batch in hand when stopped during it', () =>
    stopCase('python', 'amqp', uniquePrefix('py-amqp')));
  it('calls each record of a record batch, emits batches numbered by record, parks a bad record alone', () =>
    recordBatchCase('python', 'amqp', uniquePrefix('py-amqp')));
});

describe('rProcessor on RabbitMQ and Redis', () => {
  it('emits what score <- function() returns, logs a stray print, retries then parks an error, parks a rejection and invalid outputs', () =>
    mixedCase('r', 'amqp', uniquePrefix('r-amqp')));
  it('finds the record that crashes its worker inside a batch and parks it as worker-crash', () =>
    poisonCase('r', 'amqp', uniquePrefix('r-amqp')));
  it('calls each record of a record batch, emits batches numbered by record, parks a bad record alone', () =>
    recordBatchCase('r', 'amqp', uniquePrefix('r-amqp')));
});
