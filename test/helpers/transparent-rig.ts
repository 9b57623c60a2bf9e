/**
 * A sandbox whose egress is captured transparently, inside two network namespaces (see netns.ts): the
 * world runs world-main.ts; the sandbox runs authproxy and Envoy (transparent bootstrap) as their own
 * system user, with `authproxy sandbox-net --apply` rules in front. Clients run in the sandbox as root
 * with no proxy variable at all. Used by the transparent e2e test and the Envoy benchmark.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderTransparentBootstrap } from '../../src/envoy/transparent.js';
import { renderBootstrap } from '../../src/envoy/bootstrap.js';
import { parseUpstreamProxy } from '../../src/egress/upstream-proxy.js';
import { runCli, sealWithCli, type SealTo } from './cli.js';
import { envoyBinary } from './envoy.js';
import { eventually, tempDir, type TempDir } from './fs.js';
import { createWorld, envoyUser, type NetWorld, type Ran } from './netns.js';
import { stageForOtherUsers } from './other-user.js';
import { makePki, type TestPki } from './pki.js';
import type { WorldSpec } from './world-main.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** The world's servers: HTTPS and plain HTTP, DNS, and two raw TCP hosts (with a UDP echo). */
export const WORLD = { web: '203.0.113.10', dns: '203.0.113.53', db: '198.51.100.7', cache: '198.51.100.8' } as const;
const LISTENER_PORT = 15001;
const ADMIN_PORT = 19901;
const PROXY_PORT = 3128;

export interface TransparentRigOptions {
  /** Hostnames the world's DNS maps (to the given address) and its HTTPS upstream has certificates for. */
  readonly names: Record<string, string>;
  /** The proxy_config; `seal` seals a value with the rig's key, bound as `to` says (any sandbox unless named). */
  readonly config: (seal: (plaintext: string, to: SealTo) => string) => string;
  readonly secrets: Record<string, string>;
  /** Authorization the git backend accepts for paths under /org/repo.git (none: no git). */
  readonly gitAuthorization?: string;
  readonly logLevel?: string;
  /** Also run a forward-mode Envoy on 127.0.0.1:PORT in the sandbox, same authproxy (the benchmark compares them). */
  readonly forwardPort?: number;
  /** Egress through a forward proxy in the world (`--upstream-proxy`, serve and Envoy); `proxyLines()` lists what it got. */
  readonly upstreamProxy?: boolean;
}

export interface TransparentRig {
  readonly net: NetWorld;
  readonly dir: TempDir;
  readonly worldPki: TestPki;
  /** A CA bundle holding the world's roots and authproxy's CA, as `authproxy ca bundle` would give a sandbox. */
  readonly bundle: string;
  readonly envoyUid: number;
  /** Runs a client in the sandbox: PATH and HOME plus `env` only (no proxy variables, no inherited CA variables). */
  client(argv: readonly string[], env?: Record<string, string>, timeoutMs?: number): Promise<Ran>;
  /** `authproxy sandbox-net` with the rig's flags plus `args` (`--apply NETNS`, `--remove NETNS`). */
  sandboxNet(...args: string[]): ReturnType<typeof runCli>;
  /** What the world's HTTP servers received, in order, and the names its DNS server was asked for. */
  received(): Array<{ host: string; sni?: string; path: string; headers: Record<string, string> }>;
  dnsQueries(): string[];
  /** The forward proxy's request lines (`upstreamProxy` rigs). */
  proxyLines(): string[];
  authproxyOutput(): string;
  envoyOutput(): string;
  stop(): Promise<void>;
}

/** A bare repository org/repo.git (one commit, README.md) below `root`, cloned from a scratch work tree. */
function gitRepo(dir: TempDir): string {
  const root = dir.dir('git/org');
  const work = dir.dir('git-work');
  const git = (...a: string[]) =>
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@e', '-c', 'init.defaultBranch=main', ...a], {
      stdio: 'pipe',
    });
  git('init', '-q', work);
  writeFileSync(join(work, 'README.md'), 'hello through transparent capture\n');
  git('-C', work, 'add', '.');
  git('-C', work, 'commit', '-q', '-m', 'init');
  git('clone', '-q', '--bare', work, join(root, 'repo.git'));
  return join(dir.path, 'git');
}

export async function startTransparentRig(opts: TransparentRigOptions): Promise<TransparentRig> {
  const envoy = envoyBinary();
  if (!envoy) throw new Error('no envoy binary: run scripts/setup-deps.sh or set ENVOY_BIN');
  const { uid, gid } = envoyUser();
  const dir = tempDir('authproxy-tp-');
  chmodSync(dir.path, 0o755);
  // authproxy and Envoy run as their own uid: they reach the checkout through a stage, even from a private clone.
  const stage = stageForOtherUsers({ envoy });
  const net = await createWorld(Object.values(WORLD), WORLD.dns).catch((err) => {
    stage.cleanup();
    throw err;
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await net.destroy();
    stage.cleanup();
    dir.cleanup();
  };
  try {
    const keys = join(dir.path, 'keys');
    if (runCli(['keys', 'init', '--dir', keys]).status !== 0 || runCli(['ca', 'init', '--dir', keys]).status !== 0)
      throw new Error('key setup failed');
    const seal = (plaintext: string, to: SealTo) => sealWithCli(join(keys, 'sealing.pub'), plaintext, to);
    const worldPki = await makePki(dir.path, 'world', Object.keys(opts.names));
    const authproxyCa = join(keys, 'ca.crt');
    const bundle = dir.file(
      'bundle.pem',
      `${worldPki.caPem}\n${execFileSync('cat', [authproxyCa], { encoding: 'utf8' })}`,
    );
    dir.dir('secrets');
    for (const [k, v] of Object.entries(opts.secrets)) dir.file(`secrets/${k}`, `${v}\n`);
    const configPath = dir.file('config.yaml', opts.config(seal));
    dir.dir('home');
    mkdirSync(join(dir.path, 'run'), { mode: 0o700 });

    const spec: WorldSpec = {
      https: { host: WORLD.web, port: 443 },
      http: { host: WORLD.web, port: 80 },
      pki: { caFile: worldPki.caFile, caPem: worldPki.caPem, leaves: Object.fromEntries(worldPki.leaves) },
      ...(opts.gitAuthorization ? { git: { root: gitRepo(dir), authorization: opts.gitAuthorization } } : {}),
      dns: { host: WORLD.dns, answers: opts.names },
      tcpEcho: [
        { host: WORLD.db, port: 5432 },
        { host: WORLD.cache, port: 6379 },
      ],
      udpEcho: { host: WORLD.db, port: 9999 },
      ...(opts.upstreamProxy ? { proxy: { host: WORLD.web, port: PROXY_PORT } } : {}),
    };
    const proxyUrl = `http://${WORLD.web}:${PROXY_PORT}`;
    const world = net.spawn(
      net.world,
      [
        process.execPath,
        '--import',
        'tsx',
        join(REPO, 'test/helpers/world-main.ts'),
        dir.file('world.json', JSON.stringify(spec)),
      ],
      {
        ...process.env,
        NODE_OPTIONS: '',
        // The repository ends up owned by Envoy's user; git http-backend (run as root here) must still serve it.
        GIT_CONFIG_COUNT: '1',
        GIT_CONFIG_KEY_0: 'safe.directory',
        GIT_CONFIG_VALUE_0: '*',
      },
    );
    await eventually(
      () => {
        if (world.child.exitCode !== null) throw new Error(`world exited: ${world.output().slice(-2000)}`);
        return world.output().includes('READY');
      },
      30_000,
      'the world servers',
    );

    // authproxy and Envoy share one uid (as in production), which is also the uid the packet rules exempt.
    execFileSync('chown', ['-R', `${uid}:${gid}`, dir.path]);
    const asEnvoy = ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--'];
    const socket = join(dir.path, 'run', 'authproxy.sock');
    const authproxy = net.spawn(
      net.sandbox,
      stage.wrap([
        ...asEnvoy,
        stage.node,
        stage.bin,
        'serve',
        '--config',
        configPath,
        '--listen',
        `unix:${socket}`,
        '--secrets-dir',
        join(dir.path, 'secrets'),
        '--sealing-key',
        join(keys, 'sealing.key'),
        '--ca-cert',
        authproxyCa,
        '--ca-key',
        join(keys, 'ca.key'),
        '--log-level',
        opts.logLevel ?? 'debug',
        '--dns-resolver',
        `${WORLD.dns}:53`,
        '--sandbox-id',
        'sb-tp',
        ...(opts.upstreamProxy ? ['--upstream-proxy', proxyUrl] : []),
      ]),
      { PATH: process.env.PATH ?? '', HOME: join(dir.path, 'home') },
    );
    await eventually(
      () => {
        if (authproxy.child.exitCode !== null) throw new Error(`authproxy exited: ${authproxy.output().slice(-2000)}`);
        return existsSync(socket);
      },
      20_000,
      'authproxy to start',
    );

    const yaml = renderTransparentBootstrap({
      proxyAddress: '127.0.0.1',
      proxyPort: LISTENER_PORT,
      adminPort: ADMIN_PORT,
      authproxy: `unix:${socket}`,
      caBundle: worldPki.caFile,
      sandboxId: 'sb-tp',
      dnsResolver: `${WORLD.dns}:53`,
      messageTimeoutMs: 7000,
      upstreamProxy: opts.upstreamProxy ? parseUpstreamProxy(proxyUrl) : undefined,
    });
    const startEnvoy = async (name: string, text: string, admin: number) => {
      const file = dir.file(name, text);
      execFileSync('chown', [`${uid}:${gid}`, file]);
      const proc = net.spawn(
        net.sandbox,
        stage.wrap([
          ...asEnvoy,
          stage.envoy!,
          '-c',
          file,
          '--disable-hot-restart',
          '--log-level',
          'warn',
          '--concurrency',
          '1',
          '--base-id',
          String(admin),
        ]),
        {
          PATH: process.env.PATH ?? '',
        },
      );
      await eventually(
        async () => {
          if (proc.child.exitCode !== null) throw new Error(`envoy exited: ${proc.output().slice(-2000)}`);
          return (await net.exec(net.sandbox, ['curl', '-sf', `http://127.0.0.1:${admin}/ready`])).code === 0;
        },
        30_000,
        'envoy to be ready',
      );
      return proc;
    };
    const envoyProc = await startEnvoy('envoy.yaml', yaml, ADMIN_PORT);
    if (opts.forwardPort) {
      await startEnvoy(
        'envoy-forward.yaml',
        renderBootstrap({
          proxyAddress: '127.0.0.1',
          proxyPort: opts.forwardPort,
          adminPort: ADMIN_PORT + 1,
          authproxy: `unix:${socket}`,
          caBundle: worldPki.caFile,
          sandboxId: 'sb-tp',
          dnsResolver: `${WORLD.dns}:53`,
          messageTimeoutMs: 7000,
        }),
        ADMIN_PORT + 1,
      );
    }

    const flags = ['--listener-port', String(LISTENER_PORT), '--envoy-uid', String(uid), '--dns-resolver', WORLD.dns];
    const sandboxNet = (...args: string[]) => runCli(['sandbox-net', ...flags, ...args]);
    const applied = sandboxNet('--apply', net.sandbox);
    if (applied.status !== 0) throw new Error(`sandbox-net --apply failed: ${applied.stderr}`);

    const lines = (prefix: string) =>
      world
        .output()
        .split('\n')
        .filter((l) => l.startsWith(prefix))
        .map((l) => l.slice(prefix.length));
    return {
      net,
      dir,
      worldPki,
      bundle,
      envoyUid: uid,
      client: (argv, env = {}, timeoutMs) =>
        net.exec(net.sandbox, argv, {
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: join(dir.path, 'home'), ...env },
          timeoutMs,
        }),
      sandboxNet,
      received: () => lines('RECV ').map((l) => JSON.parse(l)),
      dnsQueries: () => lines('DNS '),
      proxyLines: () => lines('PROXY '),
      authproxyOutput: authproxy.output,
      envoyOutput: envoyProc.output,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
