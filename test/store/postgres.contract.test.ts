import { afterAll, beforeAll, describe, it } from 'vitest';
import { PostgresStore } from '../../src/store/postgres.ts';
import { findPostgres, postgresPolicy, startPostgres, type PostgresCluster } from '../support/postgres.ts';
import { storeContract } from './contract.ts';

const lookup = findPostgres();
const policy = postgresPolicy(lookup);

if (policy === 'run') {
  let cluster: PostgresCluster;
  beforeAll(async () => {
    cluster = await startPostgres();
  });
  afterAll(async () => cluster?.stop());

  storeContract('PostgreSQL', {
    keepsNulAndLoneSurrogates: false,
    concurrentInstances: true,
    async fresh() {
      const url = await cluster.createDatabase();
      return { open: () => PostgresStore.open({ url, poolMax: 4 }) };
    },
  });
} else {
  describe('the store contract: PostgreSQL', () => {
    // Under CI a missing server is a failure; elsewhere the suite is skipped, saying why.
    (policy === 'fail' ? it : it.skip)(`needs a PostgreSQL server: ${lookup.reason}`, () => {
      throw new Error(lookup.reason);
    });
  });
}
