import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, formatLine } from '../../src/logger.ts';
import { eventually, startTestEngine, TICKET, type TestEngine } from '../support/engine.ts';

/** The engine's real logger (JSON, as when stdout is not a terminal), its lines kept here. */
const lines: Array<Record<string, unknown>> = [];
let t: TestEngine;
beforeAll(async () => {
  const logger = createLogger('info', { destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
  t = await startTestEngine({ logger });
});
afterAll(async () => t.close());

describe('logs', () => {
  it('one info line per finished run: id, kind, target, status, duration and trace id', async () => {
    const ok = await t.post('/api/v1/workflows/support_triage/executions/sync', { input: TICKET });
    const failed = await t.post('/api/v1/workflows/support_triage/executions/sync', { input: { ...TICKET, fault: 'fail' } });
    for (const run of [ok.body, failed.body]) {
      const ended = await eventually(async () => lines.filter((l) => l['execution_id'] === run.id && l['status'] !== undefined && l['level'] === 'info'), (found) => found.length > 0);
      expect(ended).toHaveLength(1);
      expect(ended[0]).toMatchObject({
        kind: 'workflow', target: 'support_triage', status: run.status, finalization_path: run.diagnostics.finalization_path,
        duration_ms: expect.any(Number), trace_id: run.trace_id, msg: expect.stringMatching(new RegExp(`^workflow support_triage ${run.status} in \\d+ ms$`)),
      });
    }
    expect(ok.body.status).toBe('success');
    expect(failed.body.status).toBe('failed');
  }, 60_000);

  it('pretty lines for a terminal: time, level, message, then the fields; an error with its stack', () => {
    const line = formatLine({ level: 'info', time: '2026-12-07T01:02:03.456Z', service: 'switchyard-engine', msg: 'workflow support_triage success in 12 ms', execution_id: 'abc', duration_ms: 12, target: 'with space' }, false);
    expect(line).toBe('01:02:03.456 INFO  workflow support_triage success in 12 ms execution_id=abc duration_ms=12 target="with space"');
    const withError = formatLine({ level: 'error', time: '2026-12-07T01:02:03.456Z', msg: 'request failed', err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at here (a.ts:1:1)' } }, true);
    expect(withError).toMatch(/^01:02:03\.456 \x1b\[31mERROR\x1b\[0m request failed \x1b\[2merr="Error: boom"\x1b\[0m\n {4}at here \(a\.ts:1:1\)$/);
  });

  it('the format: pretty on a terminal, JSON when written elsewhere, or as SWITCHYARD_LOG_FORMAT says', () => {
    const written: string[] = [];
    const destination = { write: (line: string) => void written.push(line) };
    createLogger('info', { destination, format: 'pretty' }).info({ a: 1 }, 'hello');
    createLogger('info', { destination }).info({ a: 1 }, 'hello');
    expect(written[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  hello a=1\n$/);
    expect(JSON.parse(written[1]!)).toMatchObject({ level: 'info', msg: 'hello', a: 1 });
  });
});
