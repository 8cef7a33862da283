import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { storeContract } from './contract.ts';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-contract-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let databases = 0;

storeContract('SQLite', {
  keepsNulAndLoneSurrogates: true,
  concurrentInstances: false,
  async fresh() {
    const path = join(dir, `contract-${++databases}.db`);
    return { open: async () => new SqliteStore(path) };
  },
});
