/**
 * Pager sink process: `node src/pager-sink/main.ts`.
 *
 * Environment: PAGER_SINK_PORT (default 9095; 0 picks a free port), PAGER_SINK_HOST (default 0.0.0.0),
 * PAGER_SINK_MAX_PAGES (default 1000). Logs one JSON line per page on stdout, and a first line
 * {"msg":"listening","port":...} with the bound port.
 */
import { createPagerSink, writeJsonLine } from './server.ts';

function intFromEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}

const port = intFromEnv('PAGER_SINK_PORT', 9095, 0, 65535);
const host = process.env['PAGER_SINK_HOST'] || '0.0.0.0';
const maxPages = intFromEnv('PAGER_SINK_MAX_PAGES', 1000, 1, 1_000_000);

const { server } = createPagerSink({ maxPages });
server.keepAliveTimeout = 65_000;

server.listen(port, host, () => {
  const address = server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;
  writeJsonLine({ time: new Date().toISOString(), level: 'info', msg: 'listening', host, port: boundPort, maxPages });
});

function shutdown(signal: string): void {
  writeJsonLine({ time: new Date().toISOString(), level: 'info', msg: 'shutting down', signal });
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 5_000).unref();
}
process.once('SIGTERM', () => shutdown('SIGTERM'));
process.once('SIGINT', () => shutdown('SIGINT'));
