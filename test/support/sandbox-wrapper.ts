// Vitest global setup: builds the tool sandbox wrapper (scripts/build-sandbox.sh) before any test runs, because every
// ToolRuntime runs its tools through it and refuses them when it is missing. Go's build cache keeps this quick.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  execFileSync(fileURLToPath(new URL('../../scripts/build-sandbox.sh', import.meta.url)), { stdio: 'inherit' });
}
