import { describe, expectTypeOf, it } from 'vitest';
import type { Incoming } from 'warren';
import { batchOf, fileSource, postgresSink, type RecordBatch } from 'warren/actors';
import { z } from 'zod';

const Spend = z.object({ campaign: z.string(), clicks: z.number() });
type Spend = z.infer<typeof Spend>;

describe('batchOf', () => {
  it('types a consumer’s batch body by the record schema', () => {
    const types = { spendRows: batchOf(Spend) };
    expectTypeOf<Incoming<typeof types>['body']>().toEqualTypeOf<RecordBatch<Spend>>();
    expectTypeOf<Incoming<typeof types>['body']['records'][number]['clicks']>().toEqualTypeOf<number>();
    postgresSink({ name: 'db', consumes: types, table: 'spend', rows: (m) => m.body.records });
    // @ts-expect-error: rows must give row objects
    postgresSink({ name: 'db', consumes: types, table: 'spend', rows: (m) => m.body.first });
    fileSource({ name: 'files', emits: types, from: './drops', batch: 500 });
  });
});
