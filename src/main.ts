/**
 * Process entry: config -> telemetry -> store -> definitions -> engine -> HTTP; graceful shutdown.
 * Run with `node --import ./src/telemetry/register.ts src/main.ts` (npm start does): register.ts starts
 * the OpenTelemetry SDK and its instrumentations before this module's imports load.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import pino from 'pino';
import { ConfigError, loadConfig } from './config.ts';
import { demoSecretsInUse } from './demo-secrets.ts';
import { createLogger } from './logger.ts';
import { registeredTelemetrySdk, startTelemetrySdk } from './telemetry/sdk.ts';

const config = (() => {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      // A log line like every other fatal one (the level cannot come from a configuration that failed).
      const fatal = createLogger('info', { destination: pino.destination({ dest: 1, sync: true }), format: process.stdout.isTTY ? 'pretty' : 'json' });
      fatal.fatal(error.message);
      process.exit(2);
    }
    throw error;
  }
})();
const logger = createLogger(config.logLevel, { format: config.logFormat });
if (config.apiKeys.length === 0) {
  logger.warn({ host: config.host }, 'no API keys configured: the API accepts every request without authentication (allowed on a loopback address only; set SWITCHYARD_API_KEYS_FILE to require keys)');
}
if (process.env.SWITCHYARD_MODEL_API_KEY !== undefined || process.env.SWITCHYARD_API_KEYS !== undefined) {
  // /proc/<pid>/environ shows the environment the process started with, to anything running as its user.
  logger.warn('a secret is configured through the environment (SWITCHYARD_MODEL_API_KEY or SWITCHYARD_API_KEYS); processes of the same user, tools included, can read it from /proc: prefer the _FILE variables');
}
const demoSecrets = demoSecretsInUse(config);
if (demoSecrets.length > 0) {
  logger.warn({ demo_secrets: demoSecrets },
    `DEMO SECRETS IN USE: ${demoSecrets.join(', ')} ${demoSecrets.length > 1 ? 'are' : 'is'} committed in compose/demo-secrets/, known to anyone who has read the repository; `
    + 'replace them before this engine is reachable by anyone else (README.md, "Replace the demo secrets")');
}
if (config.store.kind === 'postgres' && URL.canParse(config.store.url) && new URL(config.store.url).password !== '') {
  logger.warn('SWITCHYARD_DB carries a password; processes of the same user, tools included, can read it from /proc: prefer a URL without one and the password in a pgpass file (PGPASSFILE)');
}

/**
 * Exits once the log lines written so far are out (pino writes asynchronously, and process.exit drops
 * what is still buffered), or after a second at most. Never resolves: await it to stop right there.
 */
function exitAfterLogs(code: number): Promise<never> {
  setTimeout(() => process.exit(code), 1_000);
  logger.flush(() => process.exit(code));
  return new Promise(() => {});
}
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

// Without register.ts (run as `node src/main.ts`) the SDK starts here: spans and metrics as usual, but the
// modules loaded above (pino, http) are not instrumented.
const sdk = registeredTelemetrySdk() ?? await startTelemetrySdk({ serviceVersion: version, instanceId: config.instanceId });
sdk.onExportFailing((signal, error) => {
  // One line per signal, no stack: what fails, where, and what happens now.
  const reason = error instanceof Error ? error.message || (error as NodeJS.ErrnoException).code || error.name : String(error);
  logger.warn({ signal, reason },
    `telemetry export of ${signal} is failing (${reason}); the engine keeps running, dropping what cannot be sent, and counts further failures in telemetry_failures_total without logging them`);
});
const { telemetry } = sdk;
// Started now, awaited before the start-up flush: a refused connection is known within half a second.
const receiversProbed = sdk.probeReceivers();

const LISTEN_FAILURES: Record<string, string> = {
  EADDRINUSE: 'the address is already in use (another engine or program holds it)',
  EACCES: 'permission denied (a port below 1024 needs privileges)',
  EADDRNOTAVAIL: 'this machine has no such address',
};
/** A start-up problem the operator fixes, like a bad configuration: one line that says what to do, exit 2. */
function listenFailed(error: NodeJS.ErrnoException): Promise<never> {
  const why = LISTEN_FAILURES[error.code ?? ''] ?? error.message;
  logger.fatal({ code: error.code, host: config.host, port: config.port },
    `cannot listen on ${config.host}:${config.port}: ${why}; set SWITCHYARD_PORT (or SWITCHYARD_HOST) to a free one, or stop what holds it`);
  return exitAfterLogs(2);
}
// Before anything slow (store, definitions, tool helper): a port already taken is said at once.
if (config.port !== 0) {
  const probe = createServer();
  const failure = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    probe.once('error', resolve);
    probe.listen(config.port, config.host, () => probe.close(() => resolve(undefined)));
  });
  if (failure) await listenFailed(failure);
}

// Loaded after the SDK and the instrumentations are in place.
const [{ openStore, storeLabel, openFailureHint }, { loadDefinitions, DefinitionError }, { assembleSwitchyard }, { loadPrices }] = await Promise.all([
  import('./store/open.ts'), import('./engine/definitions.ts'), import('./assemble.ts'), import('./engine/prices.ts'),
]);

let definitions, prices;
try {
  definitions = loadDefinitions(config.projectDir, { modelBaseUrl: config.modelBaseUrl, modelApiKey: config.modelApiKey !== undefined });
  prices = loadPrices(config.projectDir);
} catch (error) {
  if (error instanceof DefinitionError) {
    // One line per problem (each names its file and line), then the one fatal line.
    for (const problem of error.problems) logger.error(problem);
    logger.fatal({ problems: error.problems }, `invalid project definitions: ${error.problems.length} ${error.problems.length === 1 ? 'problem' : 'problems'} (above); fix them and start again`);
    await exitAfterLogs(2);
  }
  throw error;
}

const keysFromEnvironment = [...definitions!.agents.values()].filter((agent) => agent.model.api_key_env !== undefined).map((agent) => agent.id);
if (keysFromEnvironment.length > 0) {
  logger.warn({ agents: keysFromEnvironment }, 'agents take their model key from the environment (model.api_key_env); processes of the same user, tools included, can read it from /proc: prefer model.api_key_file');
}

const db = storeLabel(config.store);
let store: Awaited<ReturnType<typeof openStore>>;
try {
  store = await openStore(config.store, {
    instanceId: config.instanceId,
    onIdleError: (error) => logger.warn({ err: error, db }, 'a PostgreSQL connection failed while idle; the pool replaces it'),
  });
} catch (error) {
  // A damaged or foreign file (say, one something else overwrote), or a database that cannot be reached,
  // must stop the start, not leave an engine that says "ready" and answers 500 or 503 to everything.
  // The PostgreSQL URL is logged without its password, and the store's errors carry none.
  logger.fatal({ err: error, db }, `the execution store ${db} cannot be opened: ${(error as Error).message}; ${openFailureHint(config.store)}`);
  await exitAfterLogs(2);
  throw error;
}
let shuttingDown = false;
let assembled: ReturnType<typeof assembleSwitchyard>;
try {
  // The tool runtime kills, first thing, the tool processes an earlier engine left running in the runtime directory.
  assembled = assembleSwitchyard({
    telemetry, logger, store, definitions, prices,
    engine: {
      instanceId: config.instanceId, heartbeatMs: config.heartbeatMs, staleAfterMs: config.staleAfterMs, sweepIntervalMs: config.sweepIntervalMs,
      maxInFlightPerKey: config.maxInFlightPerKey, retention: config.retention, executionDataLimitBytes: config.executionDataLimitBytes,
    },
    tools: {
      outputLimitBytes: config.toolOutputLimitBytes, toolFaults: config.toolFaults, runtimeDir: config.runtimeDir, processes: config.toolProcesses,
      maxProcesses: config.maxToolProcesses,
      sandbox: config.toolSandbox, sandboxWrapper: config.sandboxWrapper, sandboxMemoryMb: config.sandboxMemoryMb, sandboxProcesses: config.sandboxProcesses,
    },
    models: { baseUrl: config.modelBaseUrl, apiKey: config.modelApiKey },
    api: {
      apiKeys: config.apiKeys, bodyLimit: config.bodyLimit, syncTimeoutMs: config.syncTimeoutMs, syncTimeoutMaxMs: config.syncTimeoutMaxMs,
      isReady: () => !shuttingDown, server: config,
    },
  });
} catch (error) {
  logger.fatal({ err: error, dir: config.runtimeDir },
    `the tool process directory ${config.runtimeDir} cannot be used: ${(error as Error).message}; point SWITCHYARD_RUNTIME_DIR at a directory the engine may write`);
  await exitAfterLogs(2);
  throw error;
}
const { engine, runtime, server, authenticator } = assembled;
// Requests refused with 401 are not traced; only keys marked trust_trace_context may switch sampling off.
sdk.setIncomingRequestPolicy((req) => authenticator.traceTreatment(req));
// What the tool sandbox enforces on this host (also in GET /api/v1/definitions): refused tools are an error, gaps a warning.
const sandbox = runtime.sandbox;
if (!sandbox.runs_tools) logger.error({ tool_sandbox: sandbox }, `tool sandbox: ${sandbox.problem}`);
else if (sandbox.mode === 'off') logger.warn({ tool_sandbox: sandbox }, `tool sandbox: ${sandbox.problem}`);
else logger.info({ tool_sandbox: sandbox }, `tool sandbox: enforced (Landlock ABI ${sandbox.landlock_abi})${sandbox.problem ? `; ${sandbox.problem}` : ''}`);
// The spawn helper forks the engine once, now, while the engine is small; no tool call waits for it to start.
runtime.start();
// The counters' start-up zeros go out before the first sweep can move them: a swept run counted in the
// first point a new instance exports would be invisible to increase() and to the SLO ratio. Bounded, as
// the Collector may be away.
// Not waited for when a receiver refuses.
if (await receiversProbed) await Promise.race([sdk.forceFlush(), new Promise((resolve) => setTimeout(resolve, config.telemetryFlushMs).unref())]);
engine.startBackgroundWork();

server.listen(config.port, config.host, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({
    url: `http://${config.host}:${port}`, project: config.projectDir, db, store: config.store.kind, runtime_dir: config.runtimeDir, tool_processes: config.toolProcesses,
    instance_id: config.instanceId,
    workflows: [...definitions.workflows.keys()], priced_models: prices.size, telemetry: sdk.enabled ? sdk.exporters : 'disabled',
    api_keys: config.apiKeys.map((k) => k.id), tool_faults: config.toolFaults,
    max_in_flight_per_key: config.maxInFlightPerKey ?? 'unlimited', max_tool_processes: config.maxToolProcesses,
    retention_days: config.retention ? config.retention.periodMs / 86_400_000 : 'forever',
  }, 'switchyard engine ready');
});
server.on('error', (error: NodeJS.ErrnoException) => {
  shuttingDown = true;
  if (error.syscall === 'listen') {
    // Taken since the check at start-up.
    void listenFailed(error);
    return;
  }
  logger.fatal({ err: error }, 'HTTP server failed');
  void exitAfterLogs(1);
});

async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  logger.info({ signal }, 'shutting down: no new executions; finishing in-flight ones');
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  await engine.shutdown(config.shutdownGraceMs);
  server.closeAllConnections();
  await closed;
  await runtime.shutdown();
  await store.close();
  // The exporters retry until their own timeout: with the Collector away that alone would outlast a
  // container's stop timeout. What is not out by then is dropped.
  // Asked again (the Collector may have come or gone since the start): when a receiver refuses, the last spans
  // and points cannot go out; not waited for.
  const waitForFlush = await sdk.probeReceivers(1_000);
  const flushDeadline = new Promise<'late'>((resolve) => setTimeout(resolve, waitForFlush ? config.telemetryFlushMs : 0, 'late').unref());
  if ((await Promise.race([sdk.shutdown(), flushDeadline])) === 'late' && waitForFlush) {
    logger.warn({ timeout_ms: config.telemetryFlushMs }, 'telemetry flush did not finish in time; exiting without the last spans and metric points');
  }
  logger.info('shutdown complete');
  await exitAfterLogs(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
