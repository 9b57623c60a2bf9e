/**
 * The operators' view: the Grafana dashboard (deploy/grafana) and the Prometheus alert rules (deploy/prometheus)
 * name only metrics authproxy exports — the names registered in src/metrics/metrics.ts, read from a live
 * registry, plus prom-client's default process/nodejs metrics and histogram series — and promtool accepts
 * the rules, passes their unit tests and parses every dashboard query. Then the metrics the rules rely on that
 * are new (config reloads, ext_proc errors) move in a real `authproxy serve`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics/metrics.js';
import { startCli } from '../helpers/cli.js';
import { missingToolsError, PROMTOOL, skipDeployChecks } from '../helpers/deploy-tools.js';
import { exchange, extProcClient, requestHeaders } from '../helpers/extproc-client.js';
import { eventually, tempDir, type TempDir } from '../helpers/fs.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const DASHBOARD = join(REPO, 'deploy/grafana/authproxy-dashboard.json');
const RULES = join(REPO, 'deploy/prometheus/authproxy-alerts.yaml');
const RULE_TESTS = join(REPO, 'deploy/prometheus/authproxy-alerts.test.yaml');
const havePromtool = existsSync(PROMTOOL);
const skipPromtool = skipDeployChecks('promtool checks', havePromtool ? [] : [PROMTOOL]);

/** Series Prometheus itself writes for every scrape target: named in rules, never exported by a target. */
const SCRAPE_SERIES = new Set(['up']);

/** Every series name authproxy's /metrics can carry. */
async function exportedNames(): Promise<Set<string>> {
  const metrics = new Metrics({ defaultMetrics: true });
  metrics.redisState('up'); // the Redis gauge and counter exist only in processes that use Redis
  const names = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
    if (String(m.type) === 'summary') for (const s of ['_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression reads: identifiers left once strings, label matchers, ranges, grouping
 * clauses, Grafana variables, numbers and function calls are taken out.
 */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?/g)) {
    if (m[2] || KEYWORDS.has(m[1]!.toLowerCase())) continue; // a function call, or an operator keyword
    names.add(m[1]!);
  }
  return [...names];
}

/** `label_values(metric{...}, label)` and `label_values(label)` template queries → the metric, if any. */
function templateMetric(query: string): string[] {
  const m = /^label_values\(\s*([A-Za-z_:][\w:]*)\s*(?:\{[^}]*\})?\s*,/.exec(query.trim());
  return m ? [m[1]!] : [];
}

interface Dashboard {
  uid: string;
  schemaVersion: number;
  panels: {
    id: number;
    type: string;
    title: string;
    datasource?: { uid: string };
    gridPos: { x: number; y: number; w: number; h: number };
    targets?: { expr: string }[];
  }[];
  templating: { list: { type: string; query?: string | { query: string } }[] };
}
interface RuleFile {
  groups: {
    name: string;
    rules: {
      alert?: string;
      record?: string;
      expr: string;
      for?: string;
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
    }[];
  }[];
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const rules = parse(readFileSync(RULES, 'utf8')) as RuleFile;
const dashboardExprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
const ruleExprs = rules.groups.flatMap((g) => g.rules.map((r) => r.expr));

/** Names in `exprs` that authproxy does not export, with the expression they came from. */
function unknownNames(exprs: string[], exported: Set<string>): string[] {
  return exprs.flatMap((e) =>
    metricNames(e)
      .filter((n) => !exported.has(n) && !SCRAPE_SERIES.has(n))
      .map((n) => `${n} in ${e.trim().slice(0, 120)}`),
  );
}

describe('operators view: dashboard and alert rules', () => {
  let exported: Set<string>;
  beforeAll(async () => {
    exported = await exportedNames();
  });

  it('the name parser finds metric names and nothing else, and flags a misspelled one', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le) (rate(authproxy_callback_duration_seconds_bucket{job=~"$job",le!="x"}[$__rate_interval])))',
      ),
    ).toEqual(['authproxy_callback_duration_seconds_bucket']);
    expect(
      metricNames(
        'sum by (level) (rate(a_total[5m])) / ignoring(level) group_left sum(rate(a_total[5m])) > 0.5 and on (job) b == bool 1',
      ),
    ).toEqual(['a_total', 'b']);
    expect(metricNames('time() - min(x_seconds{a="1e3"}) offset 5m')).toEqual(['x_seconds']);
    expect(unknownNames(['rate(authproxy_decisions_total[5m])'], exported)).toEqual([]);
    expect(unknownNames(['sum(rate(authproxy_decision_total{outcome="inject"}[5m]))'], exported)).toEqual([
      'authproxy_decision_total in sum(rate(authproxy_decision_total{outcome="inject"}[5m]))',
    ]);
  });

  it('every metric the dashboard names is one authproxy exports', () => {
    const templates = dashboard.templating.list.flatMap((v) =>
      v.type === 'query' ? templateMetric(typeof v.query === 'string' ? v.query : v.query!.query) : [],
    );
    expect(templates.length).toBeGreaterThan(0);
    expect(unknownNames([...dashboardExprs, ...templates], exported)).toEqual([]);
    const used = new Set(dashboardExprs.flatMap(metricNames));
    // The views the issue asks for: decisions by outcome, callback latency and failures, cache levels, Redis, reloads, ext_proc errors.
    for (const name of [
      'authproxy_decisions_total',
      'authproxy_callback_duration_seconds_bucket',
      'authproxy_callback_calls_total',
      'authproxy_callback_failures_total',
      'authproxy_callback_cache_lookups_total',
      'authproxy_redis_up',
      'authproxy_redis_state_changes_total',
      'authproxy_config_reloads_total',
      'authproxy_config_last_reload_successful',
      'authproxy_extproc_errors_total',
    ])
      expect(used, name).toContain(name);
    // Every authproxy_* metric has a place on the dashboard.
    const authproxyMetrics = [...exported].filter(
      (n) => n.startsWith('authproxy_') && !/_(bucket|sum|count)$/.test(n) && !n.endsWith('_duration_seconds'),
    );
    expect(authproxyMetrics.filter((n) => !used.has(n))).toEqual([]);
    for (const p of dashboard.panels.filter((x) => x.type !== 'row')) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's own ${datasource} variable, written literally in the dashboard JSON
      expect(p.datasource?.uid, p.title).toBe('${datasource}');
    }
    // A well-formed Grafana dashboard: unique panel ids, a 24-column grid, no two panels on the same cells.
    expect(dashboard.uid).toBe('authproxy-overview');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++)
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          expect(cells.has(`${x},${y}`), `${p.title} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
    }
  });

  it('every metric the alert rules name is one authproxy exports; each alert says how bad and what happened', () => {
    expect(unknownNames(ruleExprs, exported)).toEqual([]);
    const alerts = rules.groups.flatMap((g) => g.rules);
    const names = alerts.map((a) => a.alert);
    for (const wanted of [
      'AuthproxyCallbackFailureRatioHigh',
      'AuthproxyRedisDegraded',
      'AuthproxyConfigReloadFailing',
      'AuthproxyExtProcErrors',
    ])
      expect(names).toContain(wanted);
    for (const a of alerts) {
      expect(['info', 'warning', 'critical'], a.alert).toContain(a.labels?.severity);
      expect(a.annotations?.summary, a.alert).toBeTruthy();
      expect(a.annotations?.description, a.alert).toBeTruthy();
    }
  });

  describe.skipIf(skipPromtool)('promtool', () => {
    let dir: TempDir;
    // biome-ignore lint/suspicious/noDuplicateTestHooks: this hook is in the nested describe.skipIf(...)('promtool') block, which Biome does not recognise as a describe
    beforeAll(() => {
      if (!havePromtool) throw missingToolsError([PROMTOOL]);
      dir = tempDir('authproxy-promtool-');
    });
    afterAll(() => dir?.cleanup());
    const promtool = (...args: string[]) => spawnSync(PROMTOOL, args, { encoding: 'utf8', cwd: REPO });

    it('promtool check rules accepts the alert rules, and refuses a broken copy', () => {
      const ok = promtool('check', 'rules', RULES);
      expect(ok.status, ok.stdout + ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(/SUCCESS: \d+ rules found/);
      const broken = dir.file('broken.yaml', readFileSync(RULES, 'utf8').replace('> 0.05', '> > 0.05'));
      expect(promtool('check', 'rules', broken).status).toBe(1);
    });

    it('promtool test rules: each alert fires on its situation and not on healthy series', () => {
      const r = promtool('test', 'rules', RULE_TESTS);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain('SUCCESS');
    });

    it("every dashboard query parses as PromQL (Grafana's variables filled in)", () => {
      const fill = (e: string) => e.replaceAll('$__rate_interval', '5m').replace(/\$\{?(\w+)\}?/g, '.*');
      const file = dir.file(
        'dashboard-rules.yaml',
        stringify({
          groups: [
            {
              name: 'dashboard',
              rules: dashboardExprs.map((e, i) => ({ record: `dashboard:query_${i}`, expr: fill(e) })),
            },
          ],
        }),
      );
      const r = promtool('check', 'rules', file);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain(`SUCCESS: ${dashboardExprs.length} rules found`);
    });
  });
});

describe('config reload and ext_proc error metrics in a real `authproxy serve`', () => {
  let dir: TempDir;
  let proc: ReturnType<typeof startCli>;
  let base: string;
  const metric = async (line: RegExp) => (await (await fetch(`${base}/metrics`)).text()).match(line)?.[1];

  beforeAll(async () => {
    dir = tempDir();
    dir.file('config.yaml', 'rules: []\n');
    proc = startCli([
      'serve',
      '--config',
      join(dir.path, 'config.yaml'),
      '--listen',
      `unix:${join(dir.path, 'ext.sock')}`,
      '--metrics-listen',
      '127.0.0.1:0',
    ]);
    await eventually(() => proc.output().includes('http port serving'), 10_000, 'serve to start');
    base = `http://${
      JSON.parse(
        proc
          .output()
          .split('\n')
          .find((l) => l.includes('http port serving'))!,
      ).listen
    }`;
  });
  afterAll(() => {
    proc?.child.kill('SIGKILL');
    dir?.cleanup();
  });

  it('counts applied and rejected reloads, and the last-reload gauge follows', async () => {
    expect(await metric(/^authproxy_config_last_reload_successful (\d+)$/m)).toBe('1');
    expect(await metric(/^authproxy_config_reloads_total\{result="failed"\} (\d+)$/m)).toBe('0');
    writeFileSync(join(dir.path, 'config.yaml'), 'rules: [{ name: x, match_hostz: ["a.example.com"] }]\n');
    await eventually(
      async () => (await metric(/^authproxy_config_last_reload_successful (\d+)$/m)) === '0',
      8000,
      'the rejected reload',
    );
    expect(await metric(/^authproxy_config_reloads_total\{result="failed"\} (\d+)$/m)).toBe('1');
    writeFileSync(
      join(dir.path, 'config.yaml'),
      'rules: [{ name: x, match_hosts: ["a.example.com"], headers: [{ name: X, type: plaintext, value: v }] }]\n',
    );
    await eventually(
      async () => (await metric(/^authproxy_config_last_reload_successful (\d+)$/m)) === '1',
      8000,
      'the applied reload',
    );
    expect(await metric(/^authproxy_config_reloads_total\{result="ok"\} (\d+)$/m)).toBe('1');
    expect(Number(await metric(/^authproxy_config_last_reload_success_timestamp_seconds (\S+)$/m))).toBeGreaterThan(
      Date.now() / 1000 - 60,
    );
  });

  it('counts ext_proc streams ended with an error', async () => {
    expect(await metric(/^authproxy_extproc_errors_total\{reason="invalid_message"\} (\d+)$/m)).toBe('0');
    const client = extProcClient(`unix:${join(dir.path, 'ext.sock')}`);
    const bad = await exchange(client, [{}]);
    expect(bad.status.code).toBe(3); // INVALID_ARGUMENT
    const good = await exchange(client, [requestHeaders('a.example.com')]);
    expect(good.status.code).toBe(0);
    client.close();
    expect(await metric(/^authproxy_extproc_errors_total\{reason="invalid_message"\} (\d+)$/m)).toBe('1');
    expect(await metric(/^authproxy_extproc_errors_total\{reason="handler_failed"\} (\d+)$/m)).toBe('0');
  });
});
