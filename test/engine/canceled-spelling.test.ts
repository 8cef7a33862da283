import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEngine, type TestEngine } from '../support/engine.ts';

/** One spelling, `canceled`: the status, the finalization path, the list filter; the old `cancelled` still read. */
let t: TestEngine;
beforeAll(async () => {
  t = await startTestEngine();
});
afterAll(async () => t.close());

async function canceledRun(): Promise<string> {
  const started = await t.post('/api/v1/workflows/refund_approval/executions/sync', { input: { email: 'ada@analytical.example', amount: 12 } });
  expect(started.body.status).toBe('paused');
  const canceled = await t.post(`/api/v1/executions/${started.body.id}/cancel`);
  expect(canceled.status).toBe(200);
  return started.body.id as string;
}

describe('canceled, one spelling', () => {
  it('a canceled run has status and finalization path "canceled"', async () => {
    const id = await canceledRun();
    const { body } = await t.get(`/api/v1/executions/${id}`);
    expect(body).toMatchObject({ status: 'canceled', diagnostics: { finalization_path: 'canceled' } });
  });

  it('a row an older engine finalized as "cancelled" reads back as "canceled"', async () => {
    const id = await canceledRun();
    // What an engine before the rename wrote, in the same SQLite file (another connection, as another process would).
    const db = new DatabaseSync(t.dbPath);
    try {
      db.prepare(`UPDATE executions SET finalization_path = 'cancelled' WHERE id = ?`).run(id);
      expect(db.prepare('SELECT finalization_path FROM executions WHERE id = ?').get(id)).toEqual({ finalization_path: 'cancelled' });
    } finally {
      db.close();
    }
    expect((await t.get(`/api/v1/executions/${id}`)).body.diagnostics.finalization_path).toBe('canceled');
    const listed = await t.get('/api/v1/executions?status=canceled');
    expect(listed.body.executions.find((item: { id: string }) => item.id === id)?.diagnostics.finalization_path).toBe('canceled');
  });

  it('?status=cancelled, the old spelling, lists the canceled runs; an unknown status is still a 400', async () => {
    const id = await canceledRun();
    const old = await t.get('/api/v1/executions?status=cancelled');
    const current = await t.get('/api/v1/executions?status=canceled');
    expect(old.status).toBe(200);
    expect(old.body.executions.map((item: { id: string }) => item.id)).toContain(id);
    expect(old.body.executions).toEqual(current.body.executions);
    expect(old.body.executions.every((item: { status: string }) => item.status === 'canceled')).toBe(true);
    const wrong = await t.get('/api/v1/executions?status=canceld');
    expect(wrong.status).toBe(400);
    expect(wrong.body.detail).toMatch(/status must be one of .*canceled/);
  });
});
