/**
 * How the stack harness runs prometheus/, alerts/ and alertmanager.yml on loopback without changing them
 * (the mechanism documented in prometheus/README.md and alerts/README.md), as functions it can import.
 *
 *   const { configFile } = writePrometheusLayout(tmp, { prometheus: ['127.0.0.1:19090'], ... }, { alertFor: '10s' });
 *   prometheus --config.file=<configFile> ...
 *   writeAlertmanagerConfig(join(tmp, 'alertmanager.yml'), 'http://127.0.0.1:19095');
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoPath = (...parts: string[]): string => join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), ...parts);

/** The scrape jobs (and the Alertmanager) of prometheus.yml, each read from targets/<job>.json. */
export const PROMETHEUS_TARGET_JOBS = ['prometheus', 'otel-collector', 'tempo', 'alertmanager', 'pager-sink'] as const;
export type PrometheusTargetJob = (typeof PROMETHEUS_TARGET_JOBS)[number];

/** The base URL of the pager sink in alerts/alertmanager.yml, replaced by the harness's own. */
export const PAGER_SINK_BASE_URL = 'http://pager-sink:9095';

export interface AlertRuleOverrides {
  /** Replaces every `for:` duration of the alert rules, e.g. '10s'. */
  readonly alertFor?: string;
  /** Replaces the ExecutionsStuck threshold (times a run's own timeout; 1.5 in the committed rules). */
  readonly stuckThreshold?: number;
}

const DURATION = /^\d+(ms|s|m|h)$/;

/** The alert rules text with shortened `for:` durations and thresholds; names, labels and annotations untouched. */
export function overrideAlertRules(text: string, overrides: AlertRuleOverrides): string {
  let out = text;
  if (overrides.alertFor !== undefined) {
    if (!DURATION.test(overrides.alertFor)) throw new Error(`alertFor must be a Prometheus duration, got ${overrides.alertFor}`);
    out = out.replace(/^(\s+for: )\S+$/gm, `$1${overrides.alertFor}`);
  }
  if (overrides.stuckThreshold !== undefined) {
    const marker = 'max by (job, instance, kind) (executions_deadline_used_ratio) > 1.5';
    if (!out.includes(marker)) throw new Error('ExecutionsStuck expression changed: update overrideAlertRules');
    out = out.replace(marker, marker.replace('> 1.5', `> ${overrides.stuckThreshold}`));
  }
  return out;
}

/**
 * Builds <root>/prometheus/{prometheus.yml, rules -> repo, targets/<job>.json} and <root>/alerts/rules
 * (a link to the repository's rules, or overridden copies). prometheus.yml is copied byte for byte:
 * Prometheus resolves its relative paths against the directory of --config.file.
 */
export function writePrometheusLayout(
  root: string,
  targets: Readonly<Record<PrometheusTargetJob, readonly string[]>>,
  overrides: AlertRuleOverrides = {},
): { configFile: string } {
  const promDir = join(root, 'prometheus');
  mkdirSync(join(promDir, 'targets'), { recursive: true });
  copyFileSync(repoPath('prometheus/prometheus.yml'), join(promDir, 'prometheus.yml'));
  symlinkSync(repoPath('prometheus/rules'), join(promDir, 'rules'), 'dir');
  for (const job of PROMETHEUS_TARGET_JOBS) {
    const list = targets[job];
    if (!list) throw new Error(`missing targets for job ${job}`);
    writeFileSync(join(promDir, 'targets', `${job}.json`), `${JSON.stringify([{ targets: list }])}\n`);
  }
  mkdirSync(join(root, 'alerts'), { recursive: true });
  if (overrides.alertFor === undefined && overrides.stuckThreshold === undefined) {
    symlinkSync(repoPath('alerts/rules'), join(root, 'alerts', 'rules'), 'dir');
  } else {
    mkdirSync(join(root, 'alerts', 'rules'));
    for (const file of readdirSync(repoPath('alerts/rules')).filter((f) => f.endsWith('.yml'))) {
      const text = readFileSync(repoPath('alerts/rules', file), 'utf8');
      writeFileSync(join(root, 'alerts', 'rules', file), overrideAlertRules(text, overrides));
    }
  }
  return { configFile: join(promDir, 'prometheus.yml') };
}

/** Writes alerts/alertmanager.yml to `path` with the pager sink's base URL replaced (Alertmanager expands no env). */
export function writeAlertmanagerConfig(path: string, pagerSinkBaseUrl: string): void {
  const text = readFileSync(repoPath('alerts/alertmanager.yml'), 'utf8');
  if (!text.includes(PAGER_SINK_BASE_URL)) throw new Error(`alerts/alertmanager.yml no longer contains ${PAGER_SINK_BASE_URL}`);
  writeFileSync(path, text.replaceAll(PAGER_SINK_BASE_URL, pagerSinkBaseUrl.replace(/\/$/, '')));
}
