/**
 * The store contract: one suite, run against every Store implementation (sqlite.contract.test.ts,
 * postgres.contract.test.ts). What a store must do for the engine to be correct, whichever database is under
 * it: round-trip every field, list newest first with stable pages, keep markers monotonic, let exactly
 * one finalizer, resumer or sweeper win a race (within one store and across two, i.e. two processes), and
 * migrate its own schema, idempotently, even when two engines start at once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { STOP_ENDINGS } from '../../src/domain.ts';
import type { NewExecution, Store, SweepEnding } from '../../src/store/store.ts';

export interface StoreTarget {
  /**
   * Opens a store on this target's database (created and migrated on first use). Every call is another
   * store instance on the same database, as another engine process would have: its own connection(s).
   */
  open(): Promise<Store>;
}

export interface ContractOptions {
  /** A fresh, empty database. */
  readonly fresh: () => Promise<StoreTarget>;
  /** Whether U+0000 and lone surrogates come back as written (SQLite) or as U+FFFD (PostgreSQL's jsonb). */
  readonly keepsNulAndLoneSurrogates: boolean;
  /**
   * Whether several instances of the store in this one process may write at the same time. Not SQLite's:
   * its writes take the file's lock synchronously, so two connections in one event loop wait on each other
   * until the busy timeout. For it the races run on one instance; its races across processes are shown
   * with real engine processes (test/engine/sweeper.test.ts).
   */
  readonly concurrentInstances: boolean;
}

const STALE: SweepEnding['error'] = { message: 'the engine running this execution stopped sending heartbeats', code: STOP_ENDINGS.stale.code };
const staleEnding = (endedAt: number): SweepEnding => ({ status: STOP_ENDINGS.stale.status, path: STOP_ENDINGS.stale.path, error: STALE, endedAt });

export function execution(id: string, overrides: Partial<NewExecution> = {}): NewExecution {
  return {
    id, kind: 'workflow', target: 'quick_answer', trigger: 'api', input: { id }, traceId: null, traceparent: null,
    parentExecutionId: null, callerKeyId: null, ownerId: 'engine-a', createdAt: 1_000, ...overrides,
  };
}

export function storeContract(name: string, options: ContractOptions): void {
  describe(`the store contract: ${name}`, () => {
    const opened: Store[] = [];
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((store) => store.close()));
    });
    /**
     * A fresh database and one store on it; `peer()` is another store on the same database (another
     * process's view) where the store allows concurrent instances, else the same one.
     */
    async function fresh(): Promise<{ store: Store; peer: () => Promise<Store> }> {
      const target = await options.fresh();
      const open = async () => {
        const store = await target.open();
        opened.push(store);
        return store;
      };
      const store = await open();
      return { store, peer: async () => (options.concurrentInstances ? open() : store) };
    }
    /** A run created (pending), then marked running by its owner. */
    async function running(store: Store, id: string, overrides: Partial<NewExecution> = {}): Promise<void> {
      await store.createExecution(execution(id, overrides));
      await store.markRunning(id, overrides.ownerId ?? 'engine-a', 2_000);
    }

    describe('records', () => {
      it('keeps every field of a new execution, and a new execution has no diagnostics yet', async () => {
        const { store } = await fresh();
        const traceparent = `00-${'d'.repeat(32)}-${'e'.repeat(16)}-01`;
        await store.createExecution(execution('parent'));
        await store.createExecution(execution('run-1', {
          kind: 'agent', target: 'triage_agent', trigger: 'loadgen', input: { email: 'ada@analytical.example', n: 3 }, traceId: 'd'.repeat(32),
          traceparent, parentExecutionId: 'parent', callerKeyId: 'ops', ownerId: 'engine-b', createdAt: 1_700_000_000_123,
        }));
        expect(await store.getExecution('run-1')).toMatchObject({
          id: 'run-1', kind: 'agent', target: 'triage_agent', status: 'pending', trigger: 'loadgen', input: { email: 'ada@analytical.example', n: 3 },
          output: null, error: null, createdAt: 1_700_000_000_123, startedAt: null, endedAt: null, heartbeatAt: 1_700_000_000_123,
          traceId: 'd'.repeat(32), traceparent, parentExecutionId: 'parent', callerKeyId: 'ops', ownerId: 'engine-b',
          lastStartedTask: null, lastCompletedTask: null, lastCompletedSuccess: null, finalizationPath: null, completionFailure: null, taskOutputs: {},
        });
        expect(await store.getExecution('nobody')).toBeUndefined();
      });

      it('a new execution has no previous status', async () => {
        const { store } = await fresh();
        await store.createExecution(execution('run-1'));
        expect((await store.getExecution('run-1'))!.previousStatus).toBeNull();
      });

      it('refuses a second execution with the same id, and the first stays as it was', async () => {
        const { store } = await fresh();
        await store.createExecution(execution('run-1', { target: 'first' }));
        await expect(store.createExecution(execution('run-1', { target: 'second' }))).rejects.toThrow();
        expect((await store.getExecution('run-1'))!.target).toBe('first');
      });

      it('round-trips JSON: unicode, escapes, nesting, every JSON type, at the top level and inside', async () => {
        const { store } = await fresh();
        let deep: unknown = { leaf: 'bottom' };
        for (let i = 0; i < 60; i++) deep = { level: i, next: deep, list: [i, [i]] };
        const samples: unknown[] = [
          {
            text: 'héllo wörld — ünïcödé ✓', cjk: '漢字かなカナ한국어', emoji: '👩‍🚀🚀🏳️‍🌈 👍🏽', rtl: 'שלום مرحبا', combining: 'e\u0301 a\u0308',
            escapes: 'quote " backslash \\ slash / newline \n tab \t return \r bell \u0007 unit \u001f del \u007f', unicodeEscapeText: '\\u0000 is six characters',
            bmpEdge: '\uffff\ue000', astral: '\u{10ffff}\u{1f600}',
          },
          { 'key with spaces': 1, 'key.with.dots': 2, 'key"quote': 3, 'ключ': 4, '': 5, '$.weird[0]': 6 },
          { numbers: [0, -1, 1.5, -2.25e-7, 1e300, -1e300, 9007199254740991, 0.1], booleans: [true, false], nulls: [null, { a: null }], empty: [{}, [], ''] },
          deep,
          'a plain string', 42, -0.5, true, null, [1, 'two', { three: [3] }],
        ];
        for (const [i, input] of samples.entries()) {
          await store.createExecution(execution(`json-${i}`, { input }));
          expect((await store.getExecution(`json-${i}`))!.input).toEqual(input);
        }
        // Outputs, errors and task outputs go through the same columns' other writes.
        await running(store, 'json-out');
        for (const [i, output] of samples.entries()) {
          expect(await store.markTaskCompleted('json-out', 'engine-a', `task.${i}"x`, i, true, output)).not.toBe(false);
        }
        expect(await store.finalize('json-out', { status: 'success', path: 'completed', output: samples, endedAt: 3_000, error: { message: 'ünïcödé 👩‍🚀 "quoted" \\ \n', code: 'x', taskId: 'τ' } })).toBe(true);
        const record = (await store.getExecution('json-out'))!;
        expect(record.output).toEqual(samples);
        expect(record.error).toEqual({ message: 'ünïcödé 👩‍🚀 "quoted" \\ \n', code: 'x', taskId: 'τ' });
        expect(record.taskOutputs).toEqual(Object.fromEntries(samples.map((output, i) => [`task.${i}"x`, output])));
      });

      it(`U+0000 and lone surrogates ${options.keepsNulAndLoneSurrogates ? 'round-trip' : 'come back as U+FFFD (jsonb cannot hold them)'}, and never fail a write`, async () => {
        const { store } = await fresh();
        const written = { nul: 'a\u0000b', high: 'x\ud800y', low: 'x\udc00y', pair: '\ud83d\ude00', escaped: '\\u0000 stays text', key: { 'k\u0000': 1 } };
        const expected = options.keepsNulAndLoneSurrogates
          ? written
          : { nul: 'a\ufffdb', high: 'x\ufffdy', low: 'x\ufffdy', pair: '\ud83d\ude00', escaped: '\\u0000 stays text', key: { 'k\ufffd': 1 } };
        await running(store, 'odd');
        await store.markTaskCompleted('odd', 'engine-a', 'task', 0, true, written);
        await store.finalize('odd', { status: 'failed', path: 'completed', output: written, error: { message: 'a\u0000b', code: 'tool' }, endedAt: 3_000 });
        const record = (await store.getExecution('odd'))!;
        expect(record.output).toEqual(expected);
        expect(record.taskOutputs).toEqual({ task: expected });
        expect(record.error!.message).toBe(expected.nul);
      });

      it('keeps large inputs, outputs and task outputs whole (megabytes), in get and in a list with data', async () => {
        const { store } = await fresh();
        const big = (n: number, seed: string) => ({ seed, items: Array.from({ length: n }, (_, i) => ({ i, text: `${seed}-${i}-${'ü'.repeat(40)}` })) });
        const input = big(10_000, 'in'); // ~0.9 MB of JSON
        const output = big(30_000, 'out'); // ~2.7 MB
        await running(store, 'big', { input });
        await store.markTaskCompleted('big', 'engine-a', 'lookup', 0, true, big(20_000, 'task'));
        await store.finalize('big', { status: 'success', path: 'completed', output, endedAt: 3_000 });
        const record = (await store.getExecution('big'))!;
        expect(record.input).toEqual(input);
        expect(record.output).toEqual(output);
        expect(record.taskOutputs).toEqual({ lookup: big(20_000, 'task') });
        const [listed] = await store.listExecutions({ limit: 1, withData: true });
        expect(listed!.output).toEqual(output);
      });

      it('records a completion failure without touching the status; a later finalization keeps it unless it brings its own', async () => {
        const { store } = await fresh();
        await running(store, 'run-1');
        await store.recordCompletionFailure('run-1', 'writing the output failed');
        expect(await store.getExecution('run-1')).toMatchObject({ status: 'running', completionFailure: 'writing the output failed' });
        await store.finalize('run-1', { status: 'failed', path: 'fallback_completed', endedAt: 3_000, error: { message: 'x', code: 'completion_failed' } });
        expect((await store.getExecution('run-1'))!.completionFailure).toBe('writing the output failed');
        await running(store, 'run-2');
        await store.recordCompletionFailure('run-2', 'first');
        await store.finalize('run-2', { status: 'failed', path: 'fallback_completed', endedAt: 3_000, completionFailure: 'second' });
        expect((await store.getExecution('run-2'))!.completionFailure).toBe('second');
      });

      it('replaces a run\'s input and task outputs (a secret learned late), and nothing else', async () => {
        const { store } = await fresh();
        await store.createExecution(execution('run-1', { input: { token: 'sk-late-0123456789', who: 'ada' } }));
        await store.markRunning('run-1', 'engine-a', 1_500);
        await store.markTaskStarted('run-1', 'engine-a', 'fetch', 0);
        await store.markTaskCompleted('run-1', 'engine-a', 'fetch', 0, true, { token: 'sk-late-0123456789' });
        const before = (await store.getExecution('run-1'))!;
        await store.replaceData('run-1', { token: '[REDACTED]', who: 'ada' }, { fetch: { token: '[REDACTED]' } });
        const after = (await store.getExecution('run-1'))!;
        expect(after).toEqual({ ...before, input: { token: '[REDACTED]', who: 'ada' }, taskOutputs: { fetch: { token: '[REDACTED]' } } });
        expect((await store.listExecutions({ limit: 10, withData: true }))[0]!.input).toEqual({ token: '[REDACTED]', who: 'ada' });
      });
    });

    describe('lists', () => {
      it('lists newest first (ties by id), in stable pages through a cursor, with or without a status filter, without data unless asked', async () => {
        const { store } = await fresh();
        // 23 runs over 6 creation times; ids chosen so that byte order (not a locale's) decides ties.
        const ids: string[] = [];
        for (let i = 0; i < 23; i++) {
          const id = `${i % 2 === 0 ? 'B' : 'a'}-${String(i).padStart(2, '0')}`;
          ids.push(id);
          await store.createExecution(execution(id, { createdAt: 1_000 + (i % 6), input: { i } }));
          if (i % 3 === 0) await store.finalize(id, { status: 'canceled', path: 'canceled', endedAt: 5_000, output: { i } });
        }
        const expected = [...ids].sort((x, y) => {
          const cx = 1_000 + (Number(x.slice(2)) % 6);
          const cy = 1_000 + (Number(y.slice(2)) % 6);
          return cy - cx || (x < y ? -1 : x > y ? 1 : 0);
        });
        const all = await store.listExecutions({ limit: 100 });
        expect(all.map((r) => r.id)).toEqual(expected);
        expect(all.every((r) => r.input === null && r.output === null && Object.keys(r.taskOutputs).length === 0)).toBe(true);
        expect(all.find((r) => r.id === 'B-00')).toMatchObject({ status: 'canceled', finalizationPath: 'canceled', endedAt: 5_000 });

        const paged: string[] = [];
        let after: { createdAt: number; id: string } | undefined;
        for (;;) {
          const page = await store.listExecutions({ limit: 5, after });
          paged.push(...page.map((r) => r.id));
          if (page.length < 5) break;
          const last = page.at(-1)!;
          after = { createdAt: last.createdAt, id: last.id };
        }
        expect(paged).toEqual(expected);

        const canceled = await store.listExecutions({ status: 'canceled', limit: 3 });
        expect(canceled.map((r) => r.id)).toEqual(expected.filter((id) => Number(id.slice(2)) % 3 === 0).slice(0, 3));
        const last = canceled.at(-1)!;
        const next = await store.listExecutions({ status: 'canceled', limit: 100, after: { createdAt: last.createdAt, id: last.id } });
        expect([...canceled, ...next].map((r) => r.id)).toEqual(expected.filter((id) => Number(id.slice(2)) % 3 === 0));
        expect((await store.listExecutions({ status: 'pending', limit: 100 })).length).toBe(23 - 8);
        expect(await store.listExecutions({ status: 'success', limit: 100 })).toEqual([]);

        const withData = await store.listExecutions({ limit: 2, withData: true, status: 'canceled' });
        expect(withData.map((r) => [r.input, r.output])).toEqual(withData.map((r) => [{ i: Number(r.id.slice(2)) }, { i: Number(r.id.slice(2)) }]));
      });
    });

    describe('running and markers', () => {
      it('pending -> running once: the start time is the first one, the heartbeat the latest', async () => {
        const { store } = await fresh();
        await store.createExecution(execution('run-1'));
        await store.markRunning('run-1', 'engine-a', 2_000);
        expect(await store.getExecution('run-1')).toMatchObject({ status: 'running', startedAt: 2_000, heartbeatAt: 2_000 });
        await store.markRunning('run-1', 'engine-a', 2_500);
        expect(await store.getExecution('run-1')).toMatchObject({ status: 'running', startedAt: 2_000 });
      });

      it('markRunning answers true only for a pending run of its owner: not for another owner, nor a run canceled or swept meanwhile', async () => {
        const { store } = await fresh();
        await store.createExecution(execution('run-1'));
        expect(await store.markRunning('run-1', 'engine-b', 2_000)).toBe(false);
        expect(await store.getExecution('run-1')).toMatchObject({ status: 'pending', startedAt: null });
        expect(await store.markRunning('run-1', 'engine-a', 2_000)).toBe(true);
        expect(await store.markRunning('run-1', 'engine-a', 2_100)).toBe(false);
        await store.createExecution(execution('canceled'));
        await store.finalize('canceled', { status: 'canceled', path: 'canceled', endedAt: 1_500 });
        expect(await store.markRunning('canceled', 'engine-a', 2_000)).toBe(false);
        expect(await store.getExecution('canceled')).toMatchObject({ status: 'canceled', startedAt: null });
        await store.createExecution(execution('swept', { createdAt: 10 }));
        await store.sweepStale(100, staleEnding(1_000));
        expect(await store.markRunning('swept', 'engine-a', 2_000)).toBe(false);
        expect((await store.getExecution('swept'))!.status).toBe('failed');
      });

      it('markers only move forwards: a lower sequence leaves the marker (and the task output) as it was', async () => {
        const { store } = await fresh();
        await running(store, 'run-1');
        await store.markTaskStarted('run-1', 'engine-a', 'classify', 0);
        await store.markTaskCompleted('run-1', 'engine-a', 'classify', 0, true, { category: 'billing' });
        await store.markTaskStarted('run-1', 'engine-a', 'notify', 2);
        await store.markTaskStarted('run-1', 'engine-a', 'lookup', 1); // late
        await store.markTaskCompleted('run-1', 'engine-a', 'notify', 2, false, null);
        await store.markTaskCompleted('run-1', 'engine-a', 'lookup', 1, true, { customer: 'late' }); // late
        expect(await store.getExecution('run-1')).toMatchObject({
          lastStartedTask: 'notify', lastCompletedTask: 'notify', lastCompletedSuccess: false,
          taskOutputs: { classify: { category: 'billing' }, notify: null },
        });
        // The same sequence again changes nothing either.
        await store.markTaskStarted('run-1', 'engine-a', 'other', 2);
        expect((await store.getExecution('run-1'))!.lastStartedTask).toBe('notify');
      });

      it('markers answer whether the run still runs under its owner, and write nothing for another owner or a run that is not running', async () => {
        const { store } = await fresh();
        await running(store, 'run-1');
        expect(await store.markTaskStarted('run-1', 'engine-a', 'classify', 0)).toBe(true);
        expect(await store.markTaskCompleted('run-1', 'engine-a', 'classify', 0, true, 'ok')).toBe(true);
        // A lower sequence leaves the marker, but the run is still the owner's: true.
        expect(await store.markTaskStarted('run-1', 'engine-a', 'late', -1)).toBe(true);
        expect(await store.markTaskCompleted('run-1', 'engine-a', 'late', -1, false, 'late')).toBe(true);
        expect(await store.getExecution('run-1')).toMatchObject({ lastStartedTask: 'classify', lastCompletedTask: 'classify', taskOutputs: { classify: 'ok' } });
        // Another owner: false, nothing written.
        expect(await store.markTaskStarted('run-1', 'engine-b', 'lookup', 1)).toBe(false);
        expect(await store.markTaskCompleted('run-1', 'engine-b', 'lookup', 1, true, 'theirs')).toBe(false);
        expect(await store.getExecution('run-1')).toMatchObject({ lastStartedTask: 'classify', taskOutputs: { classify: 'ok' } });
        // Pending (not yet running): false.
        await store.createExecution(execution('pending'));
        expect(await store.markTaskStarted('pending', 'engine-a', 'classify', 0)).toBe(false);
        // Canceled meanwhile: false, and the canceled run's diagnostics stay as they were when it was canceled.
        await store.finalize('run-1', { status: 'canceled', path: 'canceled', endedAt: 3_000 });
        expect(await store.markTaskStarted('run-1', 'engine-a', 'lookup', 1)).toBe(false);
        expect(await store.markTaskCompleted('run-1', 'engine-a', 'lookup', 1, true, 'after cancel')).toBe(false);
        expect(await store.getExecution('run-1')).toMatchObject({ status: 'canceled', lastStartedTask: 'classify', taskOutputs: { classify: 'ok' } });
        // Paused: false (a paused run is not running until resumed).
        await running(store, 'paused');
        await store.finalize('paused', { status: 'paused', path: 'paused', endedAt: 3_000 });
        expect(await store.markTaskStarted('paused', 'engine-a', 'approve', 1)).toBe(false);
      });

      it('concurrent markers of one run end at the highest sequence', async () => {
        const { store, peer } = await fresh();
        const other = await peer();
        await running(store, 'run-1');
        const order = Array.from({ length: 30 }, (_, i) => (i * 7) % 30);
        await Promise.all(order.map((seq, n) => (n % 2 === 0 ? store : other).markTaskCompleted('run-1', 'engine-a', `task-${seq}`, seq, seq % 2 === 0, seq)));
        const record = (await store.getExecution('run-1'))!;
        expect(record).toMatchObject({ lastCompletedTask: 'task-29', lastCompletedSuccess: false });
        // Each output was written by its own marker unless a higher one had landed first: the highest always is.
        expect(record.taskOutputs['task-29']).toBe(29);
      });
    });

    describe('finalization', () => {
      it('finalizes a pending, running or paused run once; a terminal run stays as it ended', async () => {
        const { store } = await fresh();
        await store.createExecution(execution('pending'));
        await running(store, 'running');
        await running(store, 'paused');
        expect(await store.finalize('paused', { status: 'paused', path: 'paused', endedAt: 2_500 })).toBe(true);
        for (const id of ['pending', 'running', 'paused']) {
          expect(await store.finalize(id, { status: 'success', path: 'completed', output: { id }, endedAt: 3_000 })).toBe(true);
          expect(await store.finalize(id, { status: 'canceled', path: 'canceled', endedAt: 4_000, error: { message: 'late', code: 'canceled' } })).toBe(false);
          expect(await store.getExecution(id)).toMatchObject({ status: 'success', finalizationPath: 'completed', output: { id }, error: null, endedAt: 3_000 });
        }
        expect(await store.finalize('nobody', { status: 'success', path: 'completed', endedAt: 1 })).toBe(false);
      });

      it('among concurrent finalizers exactly one wins, within one store and across two stores (two processes)', async () => {
        const { store, peer } = await fresh();
        const other = await peer();
        const endings = ['success', 'failed', 'timed_out', 'canceled'] as const;
        for (let round = 0; round < 5; round++) {
          const id = `race-${round}`;
          await running(store, id);
          const results = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? store : other).finalize(id, {
            status: endings[i % 4]!, path: endings[i % 4] === 'canceled' ? 'canceled' : 'completed', output: { winner: i }, endedAt: 3_000 + i,
          })));
          expect(results.filter(Boolean)).toHaveLength(1);
          const winner = results.indexOf(true);
          expect(await other.getExecution(id)).toMatchObject({ status: endings[winner % 4], output: { winner }, endedAt: 3_000 + winner });
        }
      });

      it('previous_status is the status the run had when it was finalized, and is cleared by a resume', async () => {
        const { store } = await fresh();
        await store.createExecution(execution('pending'));
        await running(store, 'running');
        await running(store, 'paused');
        await store.finalize('pending', { status: 'canceled', path: 'canceled', endedAt: 3_000 });
        await store.finalize('running', { status: 'success', path: 'completed', endedAt: 3_000 });
        await store.finalize('paused', { status: 'paused', path: 'paused', endedAt: 3_000 });
        expect((await store.getExecution('pending'))!.previousStatus).toBe('pending');
        expect((await store.getExecution('running'))!.previousStatus).toBe('running');
        expect((await store.getExecution('paused'))!.previousStatus).toBe('running');
        await store.resume('paused', 'engine-b', 4_000);
        expect((await store.getExecution('paused'))!.previousStatus).toBeNull();
        await store.finalize('paused', { status: 'paused', path: 'paused', endedAt: 5_000 });
        await store.finalize('paused', { status: 'canceled', path: 'canceled', endedAt: 6_000 });
        expect(await store.getExecution('paused')).toMatchObject({ status: 'canceled', previousStatus: 'paused' });
        // A losing finalizer does not touch it.
        await store.finalize('paused', { status: 'failed', path: 'force_failed', endedAt: 7_000 });
        expect(await store.getExecution('paused')).toMatchObject({ status: 'canceled', previousStatus: 'paused' });
      });

      it('a paused run has not ended: no end time until it really ends', async () => {
        const { store } = await fresh();
        await running(store, 'run-1');
        await store.finalize('run-1', { status: 'paused', path: 'paused', endedAt: 3_000 });
        expect(await store.getExecution('run-1')).toMatchObject({ status: 'paused', finalizationPath: 'paused', endedAt: null });
        await store.finalize('run-1', { status: 'canceled', path: 'canceled', endedAt: 4_000 });
        expect((await store.getExecution('run-1'))!.endedAt).toBe(4_000);
      });
    });

    describe('resume', () => {
      it('resumes only a paused run, under its new owner, once', async () => {
        const { store, peer } = await fresh();
        await store.createExecution(execution('pending'));
        await running(store, 'running');
        await running(store, 'done');
        await store.finalize('done', { status: 'success', path: 'completed', endedAt: 3_000 });
        for (const id of ['pending', 'running', 'done', 'nobody']) expect(await store.resume(id, 'engine-b', 4_000)).toBe(false);
        expect((await store.getExecution('done'))!.status).toBe('success');

        await running(store, 'paused');
        await store.markTaskCompleted('paused', 'engine-a', 'approve', 0, true, { approved: null });
        await store.finalize('paused', { status: 'paused', path: 'paused', endedAt: 3_000 });
        const other = await peer();
        const results = await Promise.all([store, other, store, other].map((s, i) => s.resume('paused', `engine-${i}`, 4_000 + i)));
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = results.indexOf(true);
        expect(await store.getExecution('paused')).toMatchObject({
          status: 'running', ownerId: `engine-${winner}`, heartbeatAt: 4_000 + winner, finalizationPath: null, endedAt: null,
          startedAt: 2_000, lastCompletedTask: 'approve', taskOutputs: { approve: { approved: null } },
        });
      });
    });

    describe('heartbeats and the stale sweep', () => {
      it('a heartbeat refreshes the live runs of its owner only', async () => {
        const { store } = await fresh();
        await store.createExecution(execution('pending-a'));
        await running(store, 'running-a');
        await running(store, 'paused-a');
        await store.finalize('paused-a', { status: 'paused', path: 'paused', endedAt: 2_500 });
        await running(store, 'done-a');
        await store.finalize('done-a', { status: 'success', path: 'completed', endedAt: 2_500 });
        await running(store, 'running-b', { ownerId: 'engine-b' });
        await store.heartbeat('engine-a', 9_000);
        const beats = Object.fromEntries(await Promise.all(['pending-a', 'running-a', 'paused-a', 'done-a', 'running-b'].map(async (id) => [id, (await store.getExecution(id))!.heartbeatAt])));
        expect(beats).toEqual({ 'pending-a': 9_000, 'running-a': 9_000, 'paused-a': 2_000, 'done-a': 2_000, 'running-b': 2_000 });
      });

      it('a heartbeat answers the ids of the live runs its owner still owns', async () => {
        const { store } = await fresh();
        await store.createExecution(execution('pending-a'));
        await running(store, 'running-a');
        await running(store, 'canceled-a');
        await store.finalize('canceled-a', { status: 'canceled', path: 'canceled', endedAt: 2_500 });
        await running(store, 'paused-a');
        await store.finalize('paused-a', { status: 'paused', path: 'paused', endedAt: 2_500 });
        await running(store, 'running-b', { ownerId: 'engine-b' });
        expect((await store.heartbeat('engine-a', 9_000)).sort()).toEqual(['pending-a', 'running-a']);
        expect(await store.heartbeat('engine-b', 9_000)).toEqual(['running-b']);
        expect(await store.heartbeat('engine-c', 9_000)).toEqual([]);
        // A resume hands the run to its new owner.
        await store.resume('paused-a', 'engine-c', 9_500);
        expect(await store.heartbeat('engine-c', 9_600)).toEqual(['paused-a']);
        expect((await store.heartbeat('engine-a', 9_600)).sort()).toEqual(['pending-a', 'running-a']);
      });

      it('the sweep finalizes the pending and running runs whose heartbeat is stale, and nothing else', async () => {
        const { store } = await fresh();
        await store.createExecution(execution('stale-pending', { createdAt: 100 }));
        await store.createExecution(execution('stale-running', { createdAt: 100 }));
        await store.markRunning('stale-running', 'engine-a', 200);
        await store.markTaskStarted('stale-running', 'engine-a', 'lookup', 1);
        await store.markTaskCompleted('stale-running', 'engine-a', 'classify', 0, true, 'billing');
        await store.createExecution(execution('fresh', { createdAt: 100 }));
        await store.heartbeat('engine-a', 5_000); // refreshes all of engine-a's live runs...
        await store.createExecution(execution('stale-b', { createdAt: 100, ownerId: 'engine-b' })); // ...not engine-b's
        await store.createExecution(execution('paused', { createdAt: 100, ownerId: 'engine-b' }));
        await store.markRunning('paused', 'engine-b', 100);
        await store.finalize('paused', { status: 'paused', path: 'paused', endedAt: 150 });
        await store.createExecution(execution('done', { createdAt: 100, ownerId: 'engine-b' }));
        await store.finalize('done', { status: 'success', path: 'completed', endedAt: 150 });

        const swept = await store.sweepStale(1_000, staleEnding(6_000));
        expect(swept.map((r) => r.id)).toEqual(['stale-b']);
        expect(swept[0]).toMatchObject({ status: 'failed', finalizationPath: 'stale_swept', endedAt: 6_000, error: { code: 'stale' }, previousStatus: 'pending' });

        const later = await store.sweepStale(5_500, staleEnding(7_000));
        expect(later.map((r) => r.id).sort()).toEqual(['fresh', 'stale-pending', 'stale-running']);
        expect(later.find((r) => r.id === 'stale-running')).toMatchObject({
          status: 'failed', finalizationPath: 'stale_swept', endedAt: 7_000, previousStatus: 'running',
          lastStartedTask: 'lookup', lastCompletedTask: 'classify', lastCompletedSuccess: true, taskOutputs: { classify: 'billing' },
        });
        expect(later.find((r) => r.id === 'stale-pending')!.previousStatus).toBe('pending');
        expect(await store.getExecution('paused')).toMatchObject({ status: 'paused' });
        expect(await store.getExecution('done')).toMatchObject({ status: 'success', endedAt: 150 });
        expect(await store.sweepStale(Number.MAX_SAFE_INTEGER, staleEnding(8_000))).toEqual([]);
      });

      it('a swept run keeps the given ending (its error exactly) and its previous status as a column', async () => {
        const { store } = await fresh();
        await store.createExecution(execution('run-1', { createdAt: 100 }));
        await store.markRunning('run-1', 'engine-a', 100);
        const [swept] = await store.sweepStale(1_000, { status: 'failed', path: 'stale_swept', endedAt: 2_000, error: { message: 'gone', code: 'stale' } });
        expect(swept).toMatchObject({ error: { message: 'gone', code: 'stale' }, previousStatus: 'running' });
        expect((await store.getExecution('run-1'))!.error).toEqual({ message: 'gone', code: 'stale' });
        expect((await store.getExecution('run-1'))!.previousStatus).toBe('running');
      });

      it('sweepers racing on two stores (two processes) return each stale run exactly once', async () => {
        const { store, peer } = await fresh();
        const other = await peer();
        const third = await peer();
        const ids = Array.from({ length: 60 }, (_, i) => `stale-${String(i).padStart(2, '0')}`);
        for (const [i, id] of ids.entries()) {
          await store.createExecution(execution(id, { createdAt: 100 + i, ownerId: `dead-${i % 3}` }));
          if (i % 2 === 0) await store.markRunning(id, `dead-${i % 3}`, 150);
        }
        const sweeps = await Promise.all([store, other, third, store, other, third].map((s, i) => s.sweepStale(1_000, staleEnding(2_000 + i))));
        const returned = sweeps.flat().map((r) => r.id);
        expect(returned.sort()).toEqual(ids);
        expect(new Set(returned).size).toBe(ids.length);
        for (const record of sweeps.flat()) expect(record.previousStatus).toBe(Number(record.id.slice(6)) % 2 === 0 ? 'running' : 'pending');
        expect((await store.listExecutions({ status: 'failed', limit: 100 })).length).toBe(60);
      });

      it('a finalizer racing the sweep: exactly one of them ends the run', async () => {
        const { store, peer } = await fresh();
        const other = await peer();
        for (let round = 0; round < 10; round++) {
          const id = `run-${round}`;
          await store.createExecution(execution(id, { createdAt: 100 }));
          await store.markRunning(id, 'engine-a', 100);
          const [finalized, swept] = await Promise.all([
            store.finalize(id, { status: 'success', path: 'completed', endedAt: 3_000, output: 'done' }),
            other.sweepStale(1_000, staleEnding(3_000)),
          ]);
          expect(Number(finalized) + swept.length).toBe(1);
          expect((await store.getExecution(id))!.status).toBe(finalized ? 'success' : 'failed');
        }
      });
    });

    describe('admission: executions in flight per caller', () => {
      const limit = { maxLivePerCaller: 2 };
      it('records a new execution only while its caller has fewer live ones than the limit; ended and paused ones do not count', async () => {
        const { store } = await fresh();
        const ops = (id: string) => execution(id, { callerKeyId: 'ops' });
        expect(await store.createExecution(ops('ops-1'), limit)).toBe(true);
        await running(store, 'ops-2', { callerKeyId: 'ops' });
        expect(await store.createExecution(ops('ops-3'), limit)).toBe(false);
        expect(await store.getExecution('ops-3'), 'a refused execution leaves nothing behind').toBeUndefined();
        // Other callers, and the key-less caller (null, one caller of its own), have their own count.
        expect(await store.createExecution(execution('dev-1', { callerKeyId: 'dev' }), limit)).toBe(true);
        expect(await store.createExecution(execution('anon-1'), limit)).toBe(true);
        expect(await store.createExecution(execution('anon-2'), limit)).toBe(true);
        expect(await store.createExecution(execution('anon-3'), limit)).toBe(false);
        // Without an admission nothing is counted (a resumed or internal start).
        expect(await store.createExecution(ops('ops-unlimited'))).toBe(true);
        await store.finalize('ops-unlimited', { status: 'paused', path: 'paused', endedAt: 3_000 });
        expect(await store.createExecution(ops('ops-4'), limit)).toBe(false);
        await store.finalize('ops-1', { status: 'canceled', path: 'canceled', endedAt: 3_000 });
        expect(await store.createExecution(ops('ops-4'), limit), 'an ended run frees its slot').toBe(true);
        await store.finalize('ops-2', { status: 'paused', path: 'paused', endedAt: 3_000 });
        expect(await store.createExecution(ops('ops-5'), limit), 'a paused run frees its slot').toBe(true);
        expect(await store.createExecution(ops('ops-6'), limit)).toBe(false);
      });

      it('a resume counts like a start: a paused run of a caller at its limit stays paused until one of its runs ends', async () => {
        const { store } = await fresh();
        for (const id of ['paused-1', 'paused-2']) {
          await running(store, id, { callerKeyId: 'ops' });
          await store.finalize(id, { status: 'paused', path: 'paused', endedAt: 3_000 });
        }
        await running(store, 'busy-1', { callerKeyId: 'ops' });
        expect(await store.resume('paused-1', 'engine-b', 4_000, limit)).toBe(true);
        expect(await store.resume('paused-2', 'engine-b', 4_000, limit)).toBe(false);
        expect(await store.getExecution('paused-2')).toMatchObject({ status: 'paused', ownerId: 'engine-a' });
        await store.finalize('busy-1', { status: 'success', path: 'completed', endedAt: 5_000 });
        expect(await store.resume('paused-2', 'engine-b', 6_000, limit)).toBe(true);
        expect(await store.getExecution('paused-2')).toMatchObject({ status: 'running', ownerId: 'engine-b' });
        expect(await store.resume('nobody', 'engine-b', 6_000, limit)).toBe(false);
      });

      it('starts racing on two stores (two processes) admit exactly the limit', async () => {
        const { store, peer } = await fresh();
        const other = await peer();
        for (let round = 0; round < 3; round++) {
          const caller = `racer-${round}`;
          const results = await Promise.all(Array.from({ length: 24 }, (_, i) => (i % 2 ? other : store)
            .createExecution(execution(`${caller}-${i}`, { callerKeyId: caller }), { maxLivePerCaller: 5 })));
          expect(results.filter(Boolean).length).toBe(5);
          const live = (await store.listExecutions({ status: 'pending', limit: 100 })).filter((r) => r.callerKeyId === caller);
          expect(live.length).toBe(5);
        }
      });
    });

    describe('retention', () => {
      it('deletes executions that ended before the cutoff, oldest first, in batches; live, paused and recent ones stay', async () => {
        const { store } = await fresh();
        const endings = [['old-success', 'success', 100], ['old-failed', 'failed', 200], ['old-timed-out', 'timed_out', 300], ['old-canceled', 'canceled', 400],
          ['recent', 'success', 5_000]] as const;
        for (const [id, status, endedAt] of endings) {
          await running(store, id);
          await store.markTaskCompleted(id, 'engine-a', 'task', 0, true, { big: 'x'.repeat(1000) });
          await store.finalize(id, { status, path: status === 'canceled' ? 'canceled' : 'completed', endedAt, ...(status === 'success' ? { output: 1 } : { error: { message: 'm', code: 'c' } }) });
        }
        await running(store, 'live', { createdAt: 1 });
        await store.createExecution(execution('pending', { createdAt: 1 }));
        await running(store, 'paused', { createdAt: 1 });
        await store.finalize('paused', { status: 'paused', path: 'paused', endedAt: 50 });

        // The oldest three (the order of the returned statuses is the store's own).
        expect((await store.deleteEnded(1_000, 3)).sort()).toEqual(['failed', 'success', 'timed_out']);
        expect(await store.getExecution('old-success')).toBeUndefined();
        expect(await store.getExecution('old-canceled')).toBeDefined();
        expect(await store.deleteEnded(1_000, 3)).toEqual(['canceled']);
        expect(await store.deleteEnded(1_000, 3)).toEqual([]);
        const left = (await store.listExecutions({ limit: 100 })).map((r) => r.id).sort();
        expect(left).toEqual(['live', 'paused', 'pending', 'recent']);
        expect(await store.deleteEnded(Number.MAX_SAFE_INTEGER, 100)).toEqual(['success']);
        expect((await store.listExecutions({ limit: 100 })).map((r) => r.id).sort()).toEqual(['live', 'paused', 'pending']);
      });

      it('deleters racing on two stores (two processes) delete, and return, each execution once', async () => {
        const { store, peer } = await fresh();
        const other = await peer();
        for (let i = 0; i < 60; i++) {
          await store.createExecution(execution(`done-${i}`));
          await store.finalize(`done-${i}`, { status: i % 2 ? 'success' : 'failed', path: 'completed', endedAt: 100 + i });
        }
        const deleted: string[] = [];
        await Promise.all([store, other, store, other].map(async (s) => {
          for (;;) {
            const batch = await s.deleteEnded(1_000, 7);
            if (batch.length === 0) return;
            deleted.push(...batch);
          }
        }));
        expect(deleted.length).toBe(60);
        expect(deleted.filter((status) => status === 'success').length).toBe(30);
        expect(await store.listExecutions({ limit: 100 })).toEqual([]);
      });
    });

    describe('schema', () => {
      it('opening a database again keeps its executions and changes nothing (the migration is idempotent)', async () => {
        const target = await options.fresh();
        const first = await target.open();
        await first.createExecution(execution('kept', { input: { a: 1 } }));
        await first.close();
        for (let i = 0; i < 2; i++) {
          const again = await target.open();
          expect((await again.getExecution('kept'))!.input).toEqual({ a: 1 });
          expect((await again.listExecutions({ limit: 10 })).map((r) => r.id)).toEqual(['kept']);
          await again.close();
        }
      });

      it('several stores opening one new database at once all work (engines starting together)', async () => {
        const target = await options.fresh();
        let stores: Store[] = [];
        if (options.concurrentInstances) {
          const opening = await Promise.allSettled(Array.from({ length: 4 }, () => target.open()));
          stores = opening.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
          const failed = opening.find((o) => o.status === 'rejected');
          if (failed) {
            await Promise.all(stores.map((s) => s.close()));
            throw failed.reason;
          }
        } else {
          for (let i = 0; i < 4; i++) stores.push(await target.open());
        }
        try {
          if (options.concurrentInstances) await Promise.all(stores.map((s, i) => s.createExecution(execution(`from-${i}`))));
          else for (const [i, s] of stores.entries()) await s.createExecution(execution(`from-${i}`));
          for (const s of stores) expect((await s.listExecutions({ limit: 10 })).map((r) => r.id).sort()).toEqual(['from-0', 'from-1', 'from-2', 'from-3']);
        } finally {
          await Promise.all(stores.map((s) => s.close()));
        }
      });
    });
  });
}
