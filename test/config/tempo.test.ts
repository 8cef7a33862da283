/**
 * tempo/tempo.yaml: every host, port and path comes from an environment variable with a default, the
 * metrics generator is on and remote-writes with exemplars, and Tempo itself accepts the file.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findTool, missingBinaryPolicy, readYaml, repoPath, run } from './tools.ts';

interface TempoConfig {
  distributor: { receivers: { otlp: { protocols: { grpc: { endpoint: string }; http: { endpoint: string } } } } };
  metrics_generator: { storage: { path: string; remote_write: Array<{ url: string; send_exemplars: boolean }> } };
  storage: { trace: { backend: string } };
  overrides: { defaults: { metrics_generator: { processors: string[] } } };
  usage_report: { reporting_enabled: boolean };
}

const TEMPO = 'tempo/tempo.yaml';
const text = readFileSync(repoPath(TEMPO), 'utf8');
const config = readYaml<TempoConfig>(TEMPO);

const tempo = await findTool('tempo');
const policy = missingBinaryPolicy(tempo);
const skipNote = policy === 'skip' ? ` [skipped: ${tempo.reason}]` : '';

describe('tempo.yaml', () => {
  it('gives every environment variable a default (-config.expand-env uses ${VAR:-default})', () => {
    const references = text.match(/\$\{[^}]*\}/g) ?? [];
    expect(references.length).toBeGreaterThan(5);
    for (const ref of references) expect(ref).toMatch(/^\$\{TEMPO_[A-Z_]+:-[^}]+\}$/);
  });

  it('receives OTLP over gRPC and HTTP, stores locally, and reports no usage', () => {
    expect(config.distributor.receivers.otlp.protocols.grpc.endpoint).toContain('TEMPO_OTLP_GRPC_ENDPOINT');
    expect(config.distributor.receivers.otlp.protocols.http.endpoint).toContain('TEMPO_OTLP_HTTP_ENDPOINT');
    expect(config.storage.trace.backend).toBe('local');
    expect(config.usage_report.reporting_enabled).toBe(false);
  });

  it('generates service graphs and span metrics, remote-written to Prometheus with exemplars', () => {
    expect(config.overrides.defaults.metrics_generator.processors.toSorted()).toEqual(['service-graphs', 'span-metrics']);
    const [remoteWrite] = config.metrics_generator.storage.remote_write;
    expect(remoteWrite?.send_exemplars).toBe(true);
    expect(remoteWrite?.url).toBe('${TEMPO_REMOTE_WRITE_URL:-http://prometheus:9090/api/v1/write}');
  });
});

describe(`tempo binary${skipNote}`, () => {
  if (policy === 'fail') {
    it('is available', () => {
      throw new Error(`CI requires tempo: ${tempo.reason}`);
    });
    return;
  }

  it.skipIf(policy === 'skip')('accepts the file (-config.verify) with the variables of a loopback run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tempo-verify-'));
    try {
      const env = {
        ...process.env,
        TEMPO_LISTEN_ADDRESS: '127.0.0.1',
        TEMPO_DATA_DIR: dir,
        TEMPO_REMOTE_WRITE_URL: 'http://127.0.0.1:9/api/v1/write',
      };
      const result = await run(tempo.path!, [`-config.file=${TEMPO}`, '-config.expand-env=true', '-config.verify=true'], undefined, env);
      expect(result.code, result.stdout + result.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
