// Loads the sample tools' YAML definitions (examples/tools/<id>.yaml) into runtime ToolDefinitions, for tests.
// The engine's own definitions loader (with validation) lives elsewhere; this stays deliberately minimal.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { ToolDefinition } from '../../src/engine/runtime/tool-runtime.ts';

export const EXAMPLE_TOOLS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../examples/tools');
export const FIXTURES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), 'fixtures');

export function loadExampleTool(id: string, overrides: Partial<ToolDefinition> = {}): ToolDefinition {
  const file = join(EXAMPLE_TOOLS_DIR, `${id}.yaml`);
  const doc = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  return {
    id: String(doc.id),
    description: String(doc.description ?? ''),
    script: resolve(dirname(file), String(doc.script)),
    timeoutMs: Number(doc.timeout_ms),
    config: (doc.config as Record<string, unknown> | undefined) ?? {},
    env: (doc.env as string[] | undefined) ?? [],
    secretInputs: (doc.secret_inputs as string[] | undefined) ?? [],
    inputSchema: doc.input_schema,
    ...overrides,
  };
}

export function fixtureTool(name: string, overrides: Partial<ToolDefinition> = {}): ToolDefinition {
  return { id: name.replace(/[^a-z0-9_]/gi, '_'), description: name, script: join(FIXTURES_DIR, `${name}.ts`), timeoutMs: 5000, config: {}, env: [], ...overrides };
}

/** True while a process with this pid exists (a zombie counts as gone: it holds no resources but its slot). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The state letter of /proc/<pid>/stat (R, S, T for stopped, Z, ...). */
export function stateOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** Pids of live (non-zombie) processes whose process group is one of `pgids`, from /proc. */
export function processGroupMembers(...pgids: number[]): number[] {
  const members: number[] = [];
  for (const entry of readdirSafe('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (pgids.includes(Number(fields[2])) && fields[0] !== 'Z') members.push(Number(entry));
    } catch {
      // gone while we looked
    }
  }
  return members;
}

/**
 * Waits (bounded) until `survivors()` is empty and returns what is left. kill(SIGKILL) returns before the
 * target has died: on a loaded machine it can take a scheduling slice, so checking at once is a race.
 */
export async function leftAfterKill(survivors: () => number[], withinMs = 2000): Promise<number[]> {
  const deadline = Date.now() + withinMs;
  let left = survivors();
  while (left.length && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    left = survivors();
  }
  return left;
}

/** Direct children of a process (Linux /proc). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The spawn helper among an engine process's children (src/engine/runtime/spawn-helper.ts), if one runs. */
export function spawnHelperPid(enginePid: number): number | undefined {
  return childPids(enginePid).find((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((arg) => arg.endsWith('spawn-helper.ts'));
    } catch {
      return false;
    }
  });
}

/**
 * The tool processes an engine process started: the children of its spawn helper, or its own children when it
 * starts them itself (SWITCHYARD_TOOL_PROCESSES=local).
 */
export function toolPids(enginePid: number): number[] {
  const helper = spawnHelperPid(enginePid);
  return [...childPids(enginePid).filter((pid) => pid !== helper), ...(helper === undefined ? [] : childPids(helper))];
}

function readdirSafe(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}
