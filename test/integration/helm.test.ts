/**
 * The Helm chart (deploy/helm/authproxy): `helm lint --strict` and `helm template` for the default values and the
 * example value sets, every rendered object checked offline against the Kubernetes API types by deploy/validate
 * (strict: an unknown field fails), and then the rendered pods run for real, the way a kubelet would: every volume
 * laid out from the rendered ConfigMaps and Secrets (test fixtures for the Secrets the chart only references), the
 * container's own args and env with the mount paths remapped into a temporary directory, and its own probes.
 *
 * Tools: .venv/bin/helm and .venv/bin/k8s-validate (deploy/validate), installed by scripts/setup-deploy-tools.sh
 * (HELM_BIN overrides). Without them the suite skips locally, saying why, and fails in CI and `npm run test:deploy`.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runCli } from '../helpers/cli.js';
import { GO, HELM, missingToolsError, skipDeployChecks, VALIDATOR } from '../helpers/deploy-tools.js';
import { envoyBinary } from '../helpers/envoy.js';
import { eventually, tempDir, type TempDir } from '../helpers/fs.js';
import { makeMtls } from '../helpers/mtls.js';
import { freePort, startRedis, type RedisServer } from '../helpers/redis.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const CHART = join(REPO, 'deploy/helm/authproxy');
const PROBE_FILE = '/etc/authproxy/probe/grpc-health-probe.cjs';
const missing = [...(existsSync(HELM) ? [] : [HELM]), ...(existsSync(VALIDATOR) || GO ? [] : [VALIDATOR])];
const skip = skipDeployChecks('helm chart checks', missing);

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** `helm template` with value files (relative to the chart) and --set / --set-json pairs; throws with helm's stderr. */
function render(files: string[] = [], sets: string[] = []): string {
  const args = [
    'template',
    't',
    CHART,
    '--namespace',
    'authproxy',
    ...files.flatMap((f) => ['-f', join(CHART, f)]),
    ...sets,
  ];
  const r = spawnSync(HELM, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return r.stdout;
}

function objects(yaml: string): Obj[] {
  return parseAllDocuments(yaml)
    .map((d) => d.toJS() as Obj)
    .filter((o) => o && typeof o === 'object');
}

function validate(yaml: string): { status: number | null; out: string } {
  const r = spawnSync(VALIDATOR, ['-'], { input: yaml, encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

const find = (objs: Obj[], kind: string, name?: string) =>
  objs.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));

const VALUE_SETS: { name: string; files: string[]; kinds: string[] }[] = [
  {
    name: 'default values',
    files: [],
    kinds: ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service', 'ServiceAccount'],
  },
  {
    name: 'examples/values-ha.yaml',
    files: ['examples/values-ha.yaml'],
    kinds: [
      'ConfigMap',
      'Deployment',
      'HorizontalPodAutoscaler',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'Service',
      'ServiceAccount',
      'ServiceMonitor',
    ],
  },
  {
    name: 'examples/values-sidecar-transparent.yaml',
    files: ['examples/values-sidecar-transparent.yaml'],
    kinds: ['ConfigMap', 'Pod', 'Secret'],
  },
];

/** The Secrets the chart references but does not create, as an operator would create them (kubectl create secret). */
interface Fixtures {
  readonly secrets: Record<string, Record<string, string>>;
  readonly otherCa: { cert: string; key: string };
}

function makeFixtures(dir: TempDir, redisUrl: string): Fixtures {
  const keys = dir.dir('fixture-keys');
  expect(runCli(['keys', 'init', '--dir', keys]).status).toBe(0);
  expect(runCli(['ca', 'init', '--dir', keys]).status).toBe(0);
  const mtls = makeMtls(dir.dir('fixture-mtls'));
  const probe = mtls.client('authproxy-probe');
  const other = makeMtls(dir.dir('fixture-other'), 'other').client('intruder');
  const read = (p: string) => readFileSync(p, 'utf8');
  return {
    secrets: {
      'authproxy-keys': {
        'sealing.key': read(join(keys, 'sealing.key')),
        'signing.key': read(join(keys, 'signing.key')),
        'cache.key': randomBytes(32).toString('hex'),
      },
      'authproxy-ca': { 'ca.crt': read(join(keys, 'ca.crt')), 'ca.key': read(join(keys, 'ca.key')) },
      // A server certificate that the sidecars' CA also issued with clientAuth, so the default probe can present it.
      'authproxy-tls': { 'tls.crt': read(probe.cert), 'tls.key': read(probe.key), 'ca.crt': read(mtls.ca) },
      'authproxy-probe-tls': { 'tls.crt': read(probe.cert), 'tls.key': read(probe.key) },
      'authproxy-redis': { url: redisUrl },
      'authproxy-admin-tokens': { tokens: `# orchestrator\n${randomBytes(16).toString('hex')}\n` },
      'authproxy-workspace-secrets': { GITHUB_TOKEN: 'ghp_fixture' },
    },
    otherCa: { cert: other.cert, key: other.key },
  };
}

/** What a kubelet would give one container: its mounts laid out under `root`, its env resolved, and path remapping. */
class PodRun {
  readonly mounts = new Map<string, string>();
  readonly ports = new Map<number, number>();

  constructor(
    private readonly root: string,
    pod: Obj,
    private readonly rendered: Obj[],
    private readonly fixtures: Fixtures,
  ) {
    for (const volume of pod.volumes ?? []) this.materialize(volume);
  }

  /** Contents of a rendered ConfigMap or Secret, else a fixture Secret. */
  private source(kind: 'ConfigMap' | 'Secret', name: string): Record<string, string> {
    const obj = find(this.rendered, kind, name);
    if (obj) return { ...(obj.data ?? {}), ...(obj.stringData ?? {}) };
    const fixture = kind === 'Secret' ? this.fixtures.secrets[name] : undefined;
    if (!fixture) throw new Error(`${kind} ${name} is neither rendered nor a fixture`);
    return fixture;
  }

  private materialize(volume: Obj): void {
    const dir = join(this.root, 'volumes', volume.name);
    mkdirSync(dir, { recursive: true });
    const from = volume.configMap
      ? this.source('ConfigMap', volume.configMap.name)
      : volume.secret
        ? this.source('Secret', volume.secret.secretName)
        : undefined;
    if (!from) return; // emptyDir
    const items: { key: string; path: string }[] =
      (volume.configMap ?? volume.secret).items ?? Object.keys(from).map((key) => ({ key, path: key }));
    for (const { key, path } of items) {
      // A missing key keeps the pod from starting (ContainerCreating forever): an error here too.
      if (!(key in from))
        throw new Error(`volume ${volume.name}: key ${key} is not in its ${volume.configMap ? 'ConfigMap' : 'Secret'}`);
      writeFileSync(join(dir, path), from[key]!, { mode: 0o600 });
    }
  }

  /** Mount paths of `container` → the volume directories, longest first. */
  mountsOf(container: Obj): [string, string][] {
    return (container.volumeMounts ?? [])
      .map((m: Obj) => [m.mountPath, join(this.root, 'volumes', m.name)] as [string, string])
      .sort((a: [string, string], b: [string, string]) => b[0].length - a[0].length);
  }

  /** Gives each of the container's ports a free port of this machine (before anything is remapped). */
  async allocate(container: Obj): Promise<void> {
    for (const { containerPort } of container.ports ?? [])
      if (!this.ports.has(containerPort)) this.ports.set(containerPort, await freePort());
  }

  /** Rewrites a string as the container sees it (mount paths, its own ports) into this machine's terms. */
  remap(container: Obj, text: string): string {
    // One pass, longest mount first, so a path already rewritten (under /tmp) is not rewritten again by a /tmp mount.
    const mounts = new Map(this.mountsOf(container));
    const escapeRegExp = (m: string) => m.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const out =
      mounts.size === 0
        ? text
        : text.replace(
            new RegExp(`(${[...mounts.keys()].map(escapeRegExp).join('|')})(?=/|$|\\s|"|')`, 'g'),
            (m: string) => mounts.get(m)!,
          );
    // The container's own ports (what it listens on, and its probes dial) move to the allocated ones; other
    // addresses (the Redis URL from a Secret) are left alone.
    return out.replace(/(?:0\.0\.0\.0|127\.0\.0\.1):(\d+)\b/g, (all: string, p: string) =>
      this.ports.has(Number(p)) ? `127.0.0.1:${this.ports.get(Number(p))}` : all,
    );
  }

  env(container: Obj): Record<string, string> {
    const env: Record<string, string> = {};
    for (const e of container.env ?? []) {
      if (e.value !== undefined) env[e.name] = String(e.value);
      else if (e.valueFrom?.secretKeyRef) {
        const { name, key } = e.valueFrom.secretKeyRef;
        const value = this.source('Secret', name)[key];
        if (value === undefined) throw new Error(`env ${e.name}: Secret ${name} has no key ${key}`);
        env[e.name] = value;
      } else throw new Error(`env ${e.name}: unsupported source`);
    }
    return env;
  }

  /** The container's args as authproxy sees them (its image's entrypoint is `node /app/bin/authproxy.js`). */
  async start(container: Obj): Promise<{ child: ChildProcess; output: () => string }> {
    await this.allocate(container);
    const args = (container.args as string[]).map((a) => this.remap(container, a));
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.env(container))) env[k] = this.remap(container, v);
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    return { child, output: () => out };
  }

  /** Runs an exec probe's command (node from this machine; grpc-js from this checkout); resolves to its exit code. */
  async exec(
    container: Obj,
    command: string[],
    replace: (c: string[]) => string[] = (c) => c,
  ): Promise<{ status: number | null; out: string }> {
    await this.allocate(container);
    const mapped = replace(command.map((c) => this.remap(container, c)));
    const [cmd, ...rest] = mapped;
    const r = spawnSync(cmd === 'node' ? process.execPath : cmd!, rest, {
      cwd: REPO,
      env: { ...process.env, AUTHPROXY_APP_DIR: REPO },
      encoding: 'utf8',
      timeout: 15_000,
    });
    return { status: r.status, out: r.stdout + r.stderr };
  }

  /** An httpGet probe against the remapped port. */
  async httpGet(container: Obj, probe: Obj): Promise<number> {
    const port =
      typeof probe.port === 'number'
        ? probe.port
        : container.ports.find((p: Obj) => p.name === probe.port).containerPort;
    const local = this.ports.get(port);
    if (local === undefined) throw new Error(`probe port ${port} is not one the container listens on`);
    return (await fetch(`http://127.0.0.1:${local}${probe.path}`)).status;
  }
}

const stop = (child: ChildProcess | undefined) =>
  new Promise<void>((resolve) => {
    if (!child || child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 3000).unref();
  });

describe.skipIf(skip)('Helm chart deploy/helm/authproxy', () => {
  let dir: TempDir;
  let redis: RedisServer;
  let fixtures: Fixtures;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    if (missing.length > 0) throw missingToolsError(missing);
    // With Go, rebuilt so that an edit of deploy/validate counts: seconds after scripts/setup-deploy-tools.sh built
    // it (the Go build cache), minutes only on a cold machine. Without Go, the installed one.
    if (GO)
      execFileSync(GO, ['build', '-o', VALIDATOR, '.'], {
        cwd: join(REPO, 'deploy/validate'),
        stdio: 'pipe',
        timeout: 600_000,
      });
    dir = tempDir('authproxy-helm-');
    redis = await startRedis();
    fixtures = makeFixtures(dir, redis.url);
  }, 660_000);
  afterAll(async () => {
    await Promise.all(children.map(stop));
    await redis?.close();
    dir?.cleanup();
  });

  for (const set of VALUE_SETS) {
    it(`${set.name}: helm lint --strict, helm template, and every object passes the strict API-type check`, () => {
      const lint = spawnSync(HELM, ['lint', '--strict', CHART, ...set.files.flatMap((f) => ['-f', join(CHART, f)])], {
        encoding: 'utf8',
      });
      expect(lint.status, lint.stdout + lint.stderr).toBe(0);
      const yaml = render(set.files);
      const checked = validate(yaml);
      expect(checked.status, checked.out).toBe(0);
      expect(checked.out).toMatch(/^\d+ documents, 0 failed$/m);
      expect([...new Set(objects(yaml).map((o) => o.kind))].sort()).toEqual(set.kinds);
    }, 60_000);
  }

  it('more value combinations render and validate: sidecar pointing at the shared service, TLS off, inline secrets', () => {
    const variants = [
      ['--set', 'sidecar.enabled=true', '--set', 'sidecar.shared.enabled=true'],
      [
        '--set',
        'tls.enabled=false',
        '--set',
        'tls.bindSandboxToCert=false',
        '--set',
        'service.headless=false',
        '--set',
        'replicaCount=1',
      ],
      [
        '--set',
        'redis.url=redis://r:6379',
        '--set',
        'admin.tokens[0]=0123456789abcdef0123456789abcdef',
        '--set',
        'workspaceSecrets.values.OPENAI_API_KEY=sk-x',
        '--set',
        'serve.logFormat=pretty',
      ],
    ];
    for (const sets of variants) {
      const checked = validate(render([], sets));
      expect(checked.status, `${sets.join(' ')}\n${checked.out}`).toBe(0);
    }
    // TLS off: the kubelet's own gRPC probe (no client certificate needed) and --insecure-tcp.
    const plain = find(objects(render([], variants[1])), 'Deployment')!.spec.template.spec.containers[0];
    expect(plain.readinessProbe.grpc).toEqual({ port: 7000, service: 'envoy.service.ext_proc.v3.ExternalProcessor' });
    expect(plain.args).toContain('--insecure-tcp');
  });

  it('fails on a misspelled field: a broken value, a broken manifest, a mount of no volume, a duplicate key', () => {
    const typo = validate(render([], ['--set-json', 'securityContext={"readOnlyRootFilesytem":true}']));
    expect(typo.status).toBe(1);
    expect(typo.out).toContain(
      'unknown field "spec.template.spec.containers[0].securityContext.readOnlyRootFilesytem"',
    );

    const deployment = find(objects(render()), 'Deployment')!;
    const broken = structuredClone(deployment);
    broken.spec.replica = 3;
    const r1 = validate(JSON.stringify(broken));
    expect(r1.status).toBe(1);
    expect(r1.out).toContain('unknown field "spec.replica"');

    const missing = structuredClone(deployment);
    missing.spec.template.spec.volumes = missing.spec.template.spec.volumes.filter((v: Obj) => v.name !== 'keys');
    const r2 = validate(JSON.stringify(missing));
    expect(r2.status).toBe(1);
    expect(r2.out).toMatch(/volumeMounts\[\d+\]\.name: Not found: "keys"/);

    const r3 = validate('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n');
    expect(r3.status).toBe(1);
    expect(r3.out).toMatch(/already set|duplicate/i);

    const r4 = validate('apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n');
    expect(r4.status).toBe(1);
    expect(r4.out).toContain('unknown kind');

    const sm = find(objects(render(['examples/values-ha.yaml'])), 'ServiceMonitor')!;
    sm.spec.endpoints[0].intervall = '10s';
    const r5 = validate(JSON.stringify(sm));
    expect(r5.status).toBe(1);
    expect(r5.out).toContain('unknown field "intervall"');

    // And the chart refuses what authproxy would refuse at start.
    expect(() => render([], ['--set', 'redis.enabled=false'])).toThrow(/admin.enabled needs redis.enabled/);
    expect(() => render([], ['--set', 'serve.logFormat=xml'])).toThrow(/serve.logFormat must be json or pretty/);
    expect(() => render([], ['--set', 'sidecar.enabled=true', '--set', 'sidecar.sandbox.runAsUser=101'])).toThrow(
      /must not be 101/,
    );
  });

  it('the shared service: non-root uid 101, read-only root, no capabilities, Redis URL from a Secret, secrets as directories', () => {
    for (const files of [[], ['examples/values-ha.yaml']]) {
      const objs = objects(render(files));
      const spec = find(objs, 'Deployment')!.spec.template.spec;
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 101, runAsGroup: 101, fsGroup: 101 });
      expect(spec.automountServiceAccountToken).toBe(false);
      const c = spec.containers[0];
      expect(c.securityContext).toMatchObject({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      });
      expect(c.env.find((e: Obj) => e.name === 'AUTHPROXY_REDIS').valueFrom.secretKeyRef).toEqual({
        name: 'authproxy-redis',
        key: 'url',
      });
      expect(c.args.join(' ')).not.toMatch(/redis:\/\//);
      for (const volume of ['keys', 'ca', 'tls', 'admin-tokens'])
        expect(spec.volumes.find((v: Obj) => v.name === volume).secret.secretName).toMatch(/^authproxy-/);
      expect(spec.volumes.find((v: Obj) => v.name === 'config').configMap.name).toBe('t-authproxy');
      expect(c.readinessProbe.exec.command.slice(0, 3)).toEqual(['node', PROBE_FILE, '127.0.0.1:7000']);
      expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    }
    const ha = objects(render(['examples/values-ha.yaml']));
    expect(find(ha, 'Deployment')!.spec.replicas).toBeUndefined(); // the HPA owns the count
    expect(find(ha, 'HorizontalPodAutoscaler')!.spec).toMatchObject({
      minReplicas: 3,
      maxReplicas: 12,
      scaleTargetRef: { kind: 'Deployment', name: 't-authproxy' },
    });
    const np = find(ha, 'NetworkPolicy')!.spec;
    expect(np.policyTypes).toEqual(['Ingress', 'Egress']);
    const byPort = (port: string) => np.ingress.find((r: Obj) => r.ports[0].port === port);
    expect(byPort('grpc').from).toEqual([
      {
        podSelector: { matchLabels: { 'authproxy.io/sidecar': 'true' } },
        namespaceSelector: { matchLabels: { 'authproxy.io/sandboxes': 'true' } },
      },
    ]);
    expect(byPort('admin').from[0].podSelector).toEqual({ matchLabels: { app: 'orchestrator' } });
    expect(byPort('http').from[0].namespaceSelector.matchLabels).toEqual({
      'kubernetes.io/metadata.name': 'monitoring',
    });
    expect(np.ingress).toHaveLength(3);
    expect(find(ha, 'ServiceMonitor')!.spec.endpoints).toEqual([
      { port: 'http', path: '/metrics', interval: '15s', scrapeTimeout: '10s' },
    ]);
    expect(find(ha, 'PodDisruptionBudget')!.spec).toMatchObject({ minAvailable: 2 });
  });

  for (const files of [[], ['examples/values-ha.yaml']]) {
    it(`${files[0] ?? 'default values'}: the rendered Deployment's container starts with its own args, env and volumes; its probes pass`, async () => {
      const objs = objects(render(files));
      const pod = find(objs, 'Deployment')!.spec.template.spec;
      const container = pod.containers[0];
      const run = new PodRun(join(dir.path, `deploy-${files.length}`), pod, objs, fixtures);
      const proc = await run.start(container);
      children.push(proc.child);
      await eventually(
        () => proc.output().includes('http port serving') || proc.child.exitCode !== null,
        15_000,
        'serve to start',
      );
      expect(proc.child.exitCode, proc.output()).toBeNull();
      expect(proc.output()).toContain('admin API serving');

      expect(await run.httpGet(container, container.startupProbe.httpGet)).toBe(200);
      expect(await run.httpGet(container, container.livenessProbe.httpGet)).toBe(200);
      // The readiness probe: grpc.health.v1 over mutual TLS with the mounted client certificate.
      const ready = await run.exec(container, container.readinessProbe.exec.command);
      expect(ready.status, ready.out).toBe(0);
      // The same probe with a certificate from another CA gets no answer: the port really is mutual TLS.
      const other = await run.exec(container, container.readinessProbe.exec.command, (c) => [
        ...c.filter((a) => !a.startsWith('--cert=') && !a.startsWith('--key=')),
        `--cert=${fixtures.otherCa.cert}`,
        `--key=${fixtures.otherCa.key}`,
        '--timeout-ms=1500',
      ]);
      expect(other.status).toBe(1);
      expect(other.out).toMatch(/grpc health probe: 127\.0\.0\.1:\d+: No connection established/);
      // /metrics answers on the same port the ServiceMonitor scrapes.
      const http = container.ports.find((p: Obj) => p.name === 'http').containerPort;
      const metrics = await (await fetch(`http://127.0.0.1:${run.ports.get(http)}/metrics`)).text();
      expect(metrics).toMatch(/^authproxy_redis_up 1$/m);
      expect(metrics).toMatch(/^authproxy_config_last_reload_successful 1$/m);
      // The admin API on its port (the one networkPolicy.admin.from opens).
      const admin = container.ports.find((p: Obj) => p.name === 'admin').containerPort;
      expect((await fetch(`http://127.0.0.1:${run.ports.get(admin)}/healthz`)).status).toBe(200);
      await stop(proc.child);
    }, 60_000);
  }

  it('the example sandbox pod (transparent): init containers, uid 101 sidecars sharing only the socket volume, a bootstrap Envoy accepts, a probe that passes', async () => {
    const objs = objects(render(['examples/values-sidecar-transparent.yaml']));
    const pod = find(objs, 'Pod')!.spec;
    const byName = (list: Obj[], name: string) => list.find((c) => c.name === name)!;
    const [bootstrap, capture] = [
      byName(pod.initContainers, 'bootstrap'),
      byName(pod.initContainers, 'egress-capture'),
    ];
    const [envoy, authproxy, sandbox] = ['envoy', 'authproxy', 'sandbox'].map((n) => byName(pod.containers, n)) as [
      Obj,
      Obj,
      Obj,
    ];
    expect(pod.automountServiceAccountToken).toBe(false);

    // egress-capture: the only privileged container, and only NET_ADMIN + NET_RAW.
    expect(capture.args.slice(0, 2)).toEqual(['sandbox-net', '--apply']);
    expect(capture.args).toContain('--envoy-uid=101');
    expect(capture.securityContext).toMatchObject({
      runAsUser: 0,
      capabilities: { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] },
    });
    for (const c of [bootstrap, envoy, authproxy, sandbox])
      expect(c.securityContext.capabilities).toEqual({ drop: ['ALL'] });
    expect(envoy.securityContext.runAsUser).toBe(101);
    expect(authproxy.securityContext.runAsUser).toBe(101);
    expect(sandbox.securityContext.runAsUser).not.toBe(101);
    const mounts = (c: Obj) => (c.volumeMounts ?? []).map((m: Obj) => m.name).sort();
    expect(mounts(envoy)).toContain('authproxy-run');
    expect(mounts(authproxy)).toContain('authproxy-run');
    expect(mounts(sandbox)).toEqual(['ca-bundle']); // no socket, no keys, no secrets
    expect(sandbox.env.map((e: Obj) => e.name)).not.toContain('HTTPS_PROXY'); // transparent: no proxy variables
    // Its flags parse (printed instead of applied: no NET_ADMIN here).
    const printed = runCli(capture.args.filter((a: string) => a !== '--apply'));
    expect(printed.status, printed.stderr).toBe(0);
    expect(printed.stdout).toContain('AUTHPROXY_OUTPUT');

    const run = new PodRun(join(dir.path, 'sidecar'), pod, objs, fixtures);
    // The bootstrap init container's own script, with this checkout's authproxy for the image's.
    const script = run
      .remap(bootstrap, bootstrap.args[0])
      .replaceAll('node /app/bin/authproxy.js', `"${process.execPath}" "${BIN}"`);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(run.env(bootstrap))) env[k] = run.remap(bootstrap, v);
    const init = spawnSync('sh', ['-ec', script], { env: { ...process.env, ...env }, encoding: 'utf8' });
    expect(init.status, init.stderr).toBe(0);
    const bootstrapFile = join(run.mountsOf(envoy).find(([m]) => m === '/etc/envoy')![1], 'envoy.yaml');
    const rendered = readFileSync(bootstrapFile, 'utf8');
    expect(rendered).toContain('original_dst'); // the transparent listener
    expect(rendered).toMatch(/key: x-sandbox-id\n\s+value: sb-demo/);
    const bundle = readFileSync(join(run.mountsOf(sandbox)[0]![1], 'ca-bundle.pem'), 'utf8');
    expect(bundle).toContain(fixtures.secrets['authproxy-ca']!['ca.crt']!.trim());
    const envoyBin = envoyBinary();
    if (envoyBin) {
      const checked = spawnSync(
        envoyBin,
        ['--mode', 'validate', '-c', bootstrapFile, '--disable-hot-restart', '--log-level', 'error'],
        { encoding: 'utf8' },
      );
      expect(checked.status, checked.stdout + checked.stderr).toBe(0);
    } else console.warn('SKIPPED envoy --mode validate of the sidecar bootstrap: no Envoy binary');

    // The authproxy sidecar on its Unix socket, and its readiness probe over that socket.
    const proc = await run.start(authproxy);
    children.push(proc.child);
    await eventually(
      () => proc.output().includes('authproxy serving') || proc.child.exitCode !== null,
      15_000,
      'sidecar serve to start',
    );
    expect(proc.child.exitCode, proc.output()).toBeNull();
    // Envoy's cluster points where authproxy listens, in a volume both mount at the same path.
    expect(rendered).toContain('path: /run/authproxy/authproxy.sock');
    expect(authproxy.args).toContain('--listen=unix:/run/authproxy/authproxy.sock');
    const runMount = (c: Obj) => c.volumeMounts.find((m: Obj) => m.mountPath === '/run/authproxy');
    expect(runMount(envoy).name).toBe(runMount(authproxy).name);
    expect(pod.volumes.find((v: Obj) => v.name === runMount(envoy).name).emptyDir).toBeDefined();
    const ready = await run.exec(authproxy, authproxy.readinessProbe.exec.command);
    expect(ready.status, ready.out).toBe(0);
    await stop(proc.child);
    const down = await run.exec(authproxy, authproxy.readinessProbe.exec.command, (c) => [...c, '--timeout-ms=1000']);
    expect(down.status).toBe(1);
    // The chart's probe script is the one rendered into the ConfigMap.
    expect(find(objs, 'ConfigMap', 't-authproxy-probe')!.data['grpc-health-probe.cjs']).toBe(
      readFileSync(join(CHART, 'files/grpc-health-probe.cjs'), 'utf8'),
    );
    expect(dirname(PROBE_FILE)).toBe(authproxy.volumeMounts.find((m: Obj) => m.name === 'probe').mountPath);
  }, 60_000);
});
