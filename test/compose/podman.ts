/**
 * The compose test's hands on podman and podman-compose (scripts/compose/podman-env.sh sets CONTAINERS_CONF
 * and PODMAN_COMPOSE): start services one by one in dependency order, wait for their own healthchecks,
 * and reach services through the compose network only (a request is made by `node` inside a container of
 * the project, by service name).
 *
 * Why a harness drives the order: podman 4.3 runs no healthcheck timers without systemd, and podman-compose
 * skips `condition: service_healthy` before podman 4.6. So each service is started with `up -d --no-deps`
 * after its dependencies are healthy, and `podman healthcheck run` runs the service's own healthcheck.
 */
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function run(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileAsync(command, args, {
      env: options.env ?? process.env, cwd: options.cwd, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr || e.message };
  }
}

async function checked(command: string, args: readonly string[], options?: Parameters<typeof run>[2]): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.code}: ${result.stderr.slice(-3000)}`);
  return result.stdout;
}

/** Request inside a container of the network: argv url, method, headers (JSON), body; stdout one JSON line. */
const FETCH_SCRIPT = `
const [url, method, headers, body] = process.argv.slice(1);
const response = await fetch(url, { method, headers: JSON.parse(headers), body: body === '' ? undefined : body, signal: AbortSignal.timeout(25000) });
const text = await response.text();
process.stdout.write(JSON.stringify({ status: response.status, headers: Object.fromEntries(response.headers), body: text }));
`;

export interface ComposeOptions {
  readonly project: string;
  readonly files: readonly string[];
  readonly cwd: string;
  /** Variables compose interpolates (LOADGEN_FAULTS, GF_ADMIN_PASSWORD, ...). */
  readonly env: Record<string, string>;
  readonly log: (line: string) => void;
}

/** The fetch failures in which no connection was made (no request reached the server). */
const NEVER_CONNECTED = /UND_ERR_CONNECT_TIMEOUT|ECONNREFUSED|EHOSTUNREACH|EAI_AGAIN/;

export class ComposeProject {
  readonly #o: ComposeOptions;
  constructor(options: ComposeOptions) {
    this.#o = options;
  }

  get project(): string {
    return this.#o.project;
  }

  /** podman-compose names containers <project>_<service>_1. */
  container(service: string): string {
    return `${this.#o.project}_${service}_1`;
  }

  async compose(args: readonly string[], timeoutMs = 600_000): Promise<string> {
    const bin = process.env['PODMAN_COMPOSE'];
    if (!bin) throw new Error('PODMAN_COMPOSE is not set: run through scripts/compose/test.sh (npm run test:compose)');
    const files = this.#o.files.flatMap((file) => ['-f', file]);
    // --read-only-tmpfs=false: podman would mount tmpfs on /tmp, /var/tmp and /run of every read-only
    // container; Docker does not, so the test holds the compose file to Docker's behaviour.
    return checked(bin, ['-p', this.#o.project, ...files, '--podman-run-args=--read-only-tmpfs=false', ...args],
      { cwd: this.#o.cwd, env: { ...process.env, ...this.#o.env }, timeoutMs });
  }

  /** Starts one service (its dependencies are the caller's business: started before, in order). */
  async up(service: string): Promise<void> {
    await this.compose(['up', '-d', '--no-deps', service]);
  }

  async state(service: string): Promise<{ status: string; exitCode: number; restarts: number } | undefined> {
    const result = await run('podman', ['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}', this.container(service)]);
    if (result.code !== 0) return undefined;
    const [status, exitCode, restarts] = result.stdout.trim().split(' ');
    return { status: status!, exitCode: Number(exitCode), restarts: Number(restarts) };
  }

  /** Runs the service's own healthcheck until it passes; fails early when the container exits or restarts. */
  async healthy(service: string, timeoutMs = 240_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const state = await this.state(service);
      if (!state || state.status === 'exited' || state.restarts > 0) {
        throw new Error(`${service} is not running (${JSON.stringify(state)}); its logs:\n${await this.logs(service, 60)}`);
      }
      const result = await run('podman', ['healthcheck', 'run', this.container(service)], { timeoutMs: 60_000 });
      if (result.code === 0) return;
      last = `${result.stdout}${result.stderr}`.trim();
      if (Date.now() > deadline) throw new Error(`${service} not healthy after ${timeoutMs} ms (last check: ${last}); its logs:\n${await this.logs(service, 60)}`);
      await sleep(2_000);
    }
  }

  /** Waits for a one-shot service to exit, and returns its exit code. */
  async exited(service: string, timeoutMs = 120_000): Promise<number> {
    const out = await checked('podman', ['wait', this.container(service)], { timeoutMs });
    return Number(out.trim());
  }

  async logs(service: string, tail?: number): Promise<string> {
    const result = await run('podman', ['logs', ...(tail ? ['--tail', String(tail)] : []), this.container(service)]);
    return `${result.stdout}${result.stderr}`;
  }

  /** The JSON log lines (pino) a service wrote, parsed; other lines skipped. */
  async jsonLogs(service: string): Promise<Record<string, unknown>[]> {
    const result = await run('podman', ['logs', this.container(service)]);
    return `${result.stdout}\n${result.stderr}`.split('\n').filter((line) => line.startsWith('{')).flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  async exec(service: string, args: readonly string[], timeoutMs = 60_000): Promise<Run> {
    return run('podman', ['exec', this.container(service), ...args], { timeoutMs });
  }

  /** SIGKILL to the service's container, then a stop so the restart policy does not bring it back. */
  async kill(service: string): Promise<void> {
    await checked('podman', ['kill', '--signal', 'KILL', this.container(service)]);
    await run('podman', ['stop', '--time', '0', this.container(service)]);
  }

  /**
   * A `fetch` that runs inside the `via` service's container (which has node), so every request goes
   * over the compose network by service name; nothing is published on the host.
   */
  networkFetch(via: string): typeof fetch {
    return (async (input: string | URL | Request, init?: RequestInit) => {
      const url = String(input instanceof Request ? input.url : input);
      const headers = Object.fromEntries(new Headers(init?.headers).entries());
      const body = init?.body === undefined || init.body === null ? '' : String(init.body);
      const once = () => this.exec(via, ['node', '--input-type=module', '-e', FETCH_SCRIPT, url, init?.method ?? 'GET', JSON.stringify(headers), body], 60_000);
      let result = await once();
      // A connection that was never made sent nothing, so trying again is safe even for a POST. Seen once in CI
      // on a loaded machine: a 10 s connect timeout to a healthy Prometheus, fine on the next request.
      for (let attempt = 1; attempt < 4 && result.code !== 0 && NEVER_CONNECTED.test(result.stderr); attempt += 1) {
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        result = await once();
      }
      if (result.code !== 0) throw new Error(`fetch ${url} in ${via}: ${result.stderr.slice(-500)}`);
      const answer = JSON.parse(result.stdout) as { status: number; headers: Record<string, string>; body: string };
      // The body arrives decoded: its encoding and length no longer apply.
      for (const name of ['content-encoding', 'content-length', 'transfer-encoding']) delete answer.headers[name];
      return new Response(answer.status === 204 || answer.status === 304 ? null : answer.body, { status: answer.status, headers: answer.headers });
    }) as typeof fetch;
  }

  /** What podman still holds of the project: containers, volumes, networks, the pod podman-compose makes. */
  async leftovers(): Promise<{ containers: string[]; volumes: string[]; networks: string[]; pods: string[] }> {
    const label = `label=io.podman.compose.project=${this.#o.project}`;
    const lines = (out: string) => out.split('\n').map((line) => line.trim()).filter(Boolean);
    const containers = lines(await checked('podman', ['ps', '-a', '--filter', label, '--format', '{{.Names}}']));
    const volumes = lines(await checked('podman', ['volume', 'ls', '--filter', label, '--format', '{{.Name}}']));
    const networks = lines(await checked('podman', ['network', 'ls', '--format', '{{.Name}}'])).filter((name) => name.startsWith(`${this.#o.project}_`));
    const pods = lines(await checked('podman', ['pod', 'ls', '--format', '{{.Name}}'])).filter((name) => name === `pod_${this.#o.project}`);
    return { containers, volumes, networks, pods };
  }

  /** `down -v`, whatever state the project is in. */
  async down(): Promise<void> {
    await this.compose(['down', '-v', '--timeout', '20']);
  }
}
