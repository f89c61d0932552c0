import { postgresSinkContract } from '../helpers/postgres.ts';

postgresSinkContract('pglite');
