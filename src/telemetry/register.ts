/**
 * Starts telemetry before the engine's modules load: `node --import ./src/telemetry/register.ts src/main.ts`
 * (npm start, the Dockerfile's CMD and compose do): NodeSDK with the curated instrumentations and their ESM
 * loader hook (instrumentations.ts), so http, pg and pino are patched when src/main.ts imports them.
 * Why not `--import @opentelemetry/auto-instrumentations-node/register`: docs/architecture.md, Telemetry decisions.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { REGISTERED, startTelemetrySdk, type TelemetrySdk } from './sdk.ts';

// One instance id for the resource and the engine's configuration (src/config.ts reads the same variable).
process.env.SWITCHYARD_INSTANCE_ID ||= randomUUID();
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const sdk: TelemetrySdk = await startTelemetrySdk({ serviceVersion: version, instanceId: process.env.SWITCHYARD_INSTANCE_ID });
(globalThis as { [REGISTERED]?: TelemetrySdk })[REGISTERED] = sdk;
