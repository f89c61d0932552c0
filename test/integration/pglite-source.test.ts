import { postgresSourceContract } from '../helpers/postgres.ts';

postgresSourceContract('pglite');
