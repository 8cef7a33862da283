/**
 * Profiles a real engine process under load and summarizes where its CPU time goes.
 *
 *   node bench/profile.ts [--telemetry=on|off] [--workload=quick_answer|support_triage] [--seconds=10] [--top=25]
 *
 * Starts the engine with `node --cpu-prof` (and, with telemetry on, the Collector of the benchmarks),
 * drives it with sync requests at the workload's concurrency, stops it (SIGTERM writes the profile), and
 * prints self time by function and by package/file. The .cpuprofile stays in bench/results/profiles/ for
 * Chrome DevTools or speedscope.
 */
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { closedLoop } from './lib/http.ts';
import { REPO, startCollector, startEngine } from './lib/processes.ts';
import { WORKLOADS } from './overhead.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly byFunction: Array<{ name: string; selfMs: number; share: number }>;
  readonly byModule: Array<{ module: string; selfMs: number; share: number }>;
}

function moduleOf(url: string): string {
  if (!url) return '(native/vm)';
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = path.slice(nm + 'node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  if (path.startsWith('node:')) return path;
  if (path.startsWith(REPO)) return relative(REPO, path);
  return path;
}

export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  let total = 0;
  const fn = new Map<string, number>();
  const mod = new Map<string, number>();
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame;
    total += us;
    if (frame.functionName === '(idle)' || frame.functionName === '(program)' || frame.functionName === '(garbage collector)') {
      fn.set(frame.functionName, (fn.get(frame.functionName) ?? 0) + us);
      mod.set(frame.functionName, (mod.get(frame.functionName) ?? 0) + us);
      continue;
    }
    const module = moduleOf(frame.url);
    const name = `${frame.functionName || '(anonymous)'} ${module}:${frame.lineNumber + 1}`;
    fn.set(name, (fn.get(name) ?? 0) + us);
    mod.set(module, (mod.get(module) ?? 0) + us);
  }
  const busy = total - (fn.get('(idle)') ?? 0);
  const rank = <K extends string>(map: Map<string, number>, key: K) => [...map]
    .filter(([name]) => name !== '(idle)')
    .sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([name, us]) => ({ [key]: name, selfMs: Math.round(us / 100) / 10, share: Math.round((us / busy) * 1000) / 10 }) as { [P in K]: string } & { selfMs: number; share: number });
  return { totalMs: Math.round(busy / 1000), byFunction: rank(fn, 'name'), byModule: rank(mod, 'module') };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      telemetry: { type: 'string', default: 'on' },
      workload: { type: 'string', default: 'quick_answer' },
      seconds: { type: 'string', default: '10' },
      top: { type: 'string', default: '25' },
    },
  });
  const workload = WORKLOADS[values.workload as keyof typeof WORKLOADS];
  if (!workload) throw new Error(`unknown workload ${values.workload}`);
  const telemetry = values.telemetry === 'on';
  const dir = join(REPO, 'bench', 'results', 'profiles');
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  const collector = telemetry ? await startCollector() : undefined;
  try {
    const engine = await startEngine({ telemetry, otlpEndpoint: collector?.otlpEndpoint, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
    const result = await closedLoop({
      port: engine.port, path: workload.path, body: workload.body, concurrency: workload.concurrency,
      durationMs: Number(values.seconds) * 1000, maxRequests: 1_000_000,
    });
    await engine.stop();
    process.stdout.write(`${workload.name}, telemetry ${telemetry ? 'on' : 'off'}: ${result.ok} ok in ${(result.elapsedMs / 1000).toFixed(1)} s = ${result.perSecond.toFixed(1)}/s\n`);
  } finally {
    await collector?.close();
  }
  const file = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f))
    .filter((f) => statSync(f).mtimeMs >= started).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!file) throw new Error('no profile was written');
  const summary = summarizeProfile(file, Number(values.top));
  process.stdout.write(`profile ${relative(REPO, file)}: ${summary.totalMs} ms busy\n\nself time by package/file:\n`);
  for (const row of summary.byModule) process.stdout.write(`  ${row.share.toFixed(1).padStart(5)}%  ${row.selfMs.toFixed(0).padStart(6)} ms  ${row.module}\n`);
  process.stdout.write('\nself time by function:\n');
  for (const row of summary.byFunction) process.stdout.write(`  ${row.share.toFixed(1).padStart(5)}%  ${row.selfMs.toFixed(0).padStart(6)} ms  ${row.name}\n`);
}

if (import.meta.main) await main();
