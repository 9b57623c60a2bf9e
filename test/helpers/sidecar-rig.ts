/**
 * A whole sidecar on loopback, for end-to-end tests, the demo and the Envoy benchmark: a TLS upstream
 * (with its own test CA) answering for every test hostname, a DNS server mapping those names to
 * 127.0.0.1, `authproxy serve` as a child process on a 0600 Unix socket (with keys and the interception
 * CA), and a real Envoy rendered by `renderBootstrap`.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { renderBootstrap, type BootstrapOptions } from '../../src/envoy/bootstrap.js';
import { runCli, sealWithCli, startCli, type SealTo } from './cli.js';
import { startDnsServer, type DnsAnswer } from './dns-server.js';
import { freePort, startEnvoy, type RunningEnvoy } from './envoy.js';
import { eventually, tempDir, type TempDir } from './fs.js';
import { makePki, type TestPki } from './pki.js';
import { startUpstream, type GitRepoOptions, type UpstreamHandler } from './upstream.js';

export interface RigOptions {
  readonly hosts: string[];
  /** The proxy_config; `seal` seals a value with the rig's key, bound as `to` says (any sandbox unless named); `upstreamPort` is the TLS upstream's port. */
  readonly config: (seal: (plaintext: string, to: SealTo) => string, upstreamPort: number) => string;
  /** Names the DNS server answers that get no upstream certificate (a server with the wrong certificate). */
  readonly dnsOnlyHosts?: string[];
  readonly secrets: Record<string, string>;
  readonly git?: (dir: TempDir) => Promise<GitRepoOptions>;
  /** Last word on the Envoy YAML (the benchmark removes the ext_proc filter for its baseline). */
  readonly envoyYaml?: (yaml: string) => string;
  readonly logLevel?: string;
  /** `--egress-allow-cidrs` of authproxy: the test names resolve to 127.0.0.1, so loopback by default; `''` = none. */
  readonly egressAllow?: string;
  /** Answers of the rig's DNS server (see startDnsServer); default: 127.0.0.1 for every host. */
  readonly dnsAnswer?: DnsAnswer;
  /** More `authproxy serve` flags (e.g. `--redis`, `--metrics-listen`). */
  readonly serveArgs?: string[];
  /** Answers the upstream's requests instead of the echo (a fake AWS endpoint); still recorded in `received`. */
  readonly upstreamHandler?: UpstreamHandler;
  /** Environment of the authproxy process, given the upstream's port and CA (its own cloud credentials, NODE_EXTRA_CA_CERTS). */
  readonly authproxyEnv?: (upstream: { port: number; caFile: string }) => Record<string, string>;
  /** More bootstrap options (e.g. `upstreamProxy`). */
  readonly bootstrap?: Partial<BootstrapOptions>;
}

export interface Rig {
  readonly dir: TempDir;
  readonly upstreamPki: TestPki;
  readonly upstream: Awaited<ReturnType<typeof startUpstream>>;
  readonly dns: Awaited<ReturnType<typeof startDnsServer>>;
  readonly proxyUrl: string;
  readonly authproxyCa: string;
  readonly configPath: string;
  url(host: string, path: string): string;
  seal(plaintext: string, to: SealTo): string;
  authproxyOutput(): string;
  stopAuthproxy(): Promise<void>;
  startAuthproxy(): Promise<void>;
  envoy: RunningEnvoy;
  /** One Envoy statistic from the admin port (`/stats?filter=`), as a number. */
  envoyStat(name: string): Promise<number>;
  stop(): Promise<void>;
}

export async function startRig(opts: RigOptions): Promise<Rig> {
  const dir = tempDir('authproxy-rig-');
  mkdirSync(join(dir.path, 'run'), { mode: 0o700 });
  const keys = join(dir.path, 'keys');
  const upstreamPki = await makePki(dir.path, 'upstream', opts.hosts);
  const upstream = await startUpstream(
    upstreamPki,
    opts.git ? await opts.git(dir) : undefined,
    undefined,
    opts.upstreamHandler,
  );
  const dns = await startDnsServer([...opts.hosts, ...(opts.dnsOnlyHosts ?? [])], opts.dnsAnswer);
  const egressAllow = opts.egressAllow ?? '127.0.0.0/8';
  if (runCli(['keys', 'init', '--dir', keys]).status !== 0 || runCli(['ca', 'init', '--dir', keys]).status !== 0)
    throw new Error('key setup failed');
  const seal = (plaintext: string, to: SealTo) => sealWithCli(join(keys, 'sealing.pub'), plaintext, to);
  dir.dir('secrets');
  for (const [k, v] of Object.entries(opts.secrets)) dir.file(`secrets/${k}`, `${v}\n`);
  const configPath = dir.file('config.yaml', opts.config(seal, upstream.port));
  const socket = join(dir.path, 'run', 'authproxy.sock');
  let authproxy: ReturnType<typeof startCli> | undefined;
  let earlierOutput = '';
  const startAuthproxy = async () => {
    authproxy = startCli(
      [
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
        join(keys, 'ca.crt'),
        '--ca-key',
        join(keys, 'ca.key'),
        '--log-level',
        opts.logLevel ?? 'debug',
        '--dns-resolver',
        `127.0.0.1:${dns.port}`,
        ...(egressAllow ? ['--egress-allow-cidrs', egressAllow] : []),
        ...(opts.serveArgs ?? []),
      ],
      opts.authproxyEnv?.({ port: upstream.port, caFile: upstreamPki.caFile }),
    );
    const current = authproxy;
    await eventually(
      () => {
        if (current.child.exitCode !== null) throw new Error(`authproxy exited: ${current.output().slice(-2000)}`);
        return existsSync(socket);
      },
      15_000,
      'authproxy to start',
    );
  };
  const stopAuthproxy = async () => {
    if (!authproxy) return;
    authproxy.child.kill('SIGKILL');
    await authproxy.exited;
    rmSync(socket, { force: true });
    earlierOutput += authproxy.output();
    authproxy = undefined;
  };
  let envoy: RunningEnvoy;
  let proxyPort: number;
  let adminPort: number;
  try {
    await startAuthproxy();
    proxyPort = await freePort();
    adminPort = await freePort();
    let yaml = renderBootstrap({
      proxyAddress: '127.0.0.1',
      proxyPort,
      adminPort,
      authproxy: `unix:${socket}`,
      caBundle: upstreamPki.caFile,
      sandboxId: 'sb-rig',
      dnsResolver: `127.0.0.1:${dns.port}`,
      messageTimeoutMs: 7000,
      ...opts.bootstrap,
    });
    if (opts.envoyYaml) yaml = opts.envoyYaml(yaml);
    envoy = await startEnvoy(dir.path, yaml, adminPort);
  } catch (err) {
    // A rig that fails half way leaves nothing running behind it.
    await stopAuthproxy();
    await upstream.close();
    dns.close();
    dir.cleanup();
    throw err;
  }
  return {
    dir,
    upstreamPki,
    upstream,
    dns,
    proxyUrl: `http://127.0.0.1:${proxyPort}`,
    authproxyCa: join(keys, 'ca.crt'),
    configPath,
    url: (host, path) => `https://${host}:${upstream.port}${path}`,
    seal,
    authproxyOutput: () => earlierOutput + (authproxy?.output() ?? ''),
    stopAuthproxy,
    startAuthproxy,
    envoy,
    envoyStat: async (name) => {
      const text = await (
        await fetch(`http://127.0.0.1:${adminPort}/stats?filter=${encodeURIComponent(`^${name}$`)}`)
      ).text();
      const m = /: (\d+)\s*$/.exec(text.trim());
      if (!m) throw new Error(`no Envoy stat ${name}`);
      return Number(m[1]);
    },
    stop: async () => {
      await envoy.stop();
      await stopAuthproxy();
      await upstream.close();
      dns.close();
      dir.cleanup();
    },
  };
}
