import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { envoyBinary } from '../helpers/envoy.js';
import { tempDir, type TempDir } from '../helpers/fs.js';
import { makeMtls } from '../helpers/mtls.js';

const bin = envoyBinary();
if (!bin) console.warn('SKIPPED envoy --mode validate checks: no Envoy binary (.ci/run installs it; or set ENVOY_BIN)');

/** Runs `envoy --mode validate` on a rendered bootstrap: Envoy itself is the judge of the YAML. */
function envoyValidate(dir: string, yaml: string): string {
  const file = join(dir, `e-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  try {
    return execFileSync(bin!, ['--mode', 'validate', '-c', file, '--disable-hot-restart', '--log-level', 'error'], {
      encoding: 'utf8',
      stdio: 'pipe',
    });
  } catch (err) {
    throw new Error(
      `envoy rejected the config: ${(err as { stdout?: string; stderr?: string }).stderr ?? ''}${(err as { stdout?: string }).stdout ?? ''}`,
    );
  }
}

describe('authproxy envoy-config and sandbox-env', () => {
  let dir: TempDir;
  beforeAll(() => {
    dir = tempDir();
  });
  afterAll(() => dir.cleanup());

  it('renders the committed envoy/envoy.yaml with default flags', () => {
    const r = runCli(['envoy-config']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(readFileSync(new URL('../../envoy/envoy.yaml', import.meta.url), 'utf8'));
  });

  it('sets the sandbox id and phase on every ext_proc stream and the SDS source', () => {
    const yaml = runCli(['envoy-config', '--sandbox-id', 'sb-77']).stdout;
    expect(yaml.match(/key: x-sandbox-id\n\s+value: sb-77/g)).toHaveLength(3);
    expect(yaml).toMatch(/key: x-authproxy-phase\n\s+value: connect/);
    expect(yaml).toMatch(/key: x-authproxy-phase\n\s+value: inject/);
    const doc = parse(yaml);
    const inner = doc.static_resources.listeners[1].filter_chains[0].filters[0].typed_config;
    // Paths go upstream byte for byte (S3 keys with `//`, `..` or `%2F`); authproxy normalises only its copy for matching.
    expect(inner).toMatchObject({
      normalize_path: false,
      merge_slashes: false,
      path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
      strip_any_host_port: true,
      strip_trailing_host_dot: true,
    });
    const extProc = inner.http_filters[0].typed_config;
    expect(extProc).toMatchObject({
      failure_mode_allow: false,
      processing_mode: { request_header_mode: 'SEND', response_header_mode: 'SKIP' },
    });
    expect(extProc.message_timeout).toBe('12.000s');
    const outerRoutes =
      doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes;
    const tunnel = outerRoutes.find((r: { name: string }) => r.name === 'http_tunnel');
    expect(tunnel.request_headers_to_remove).toEqual(['x-authproxy-route', 'proxy-authorization']);
    expect(doc.layered_runtime.layers[0].static_layer['envoy.reloadable_features.ext_proc_graceful_grpc_close']).toBe(
      true,
    );
  });

  it('reaches authproxy over HTTP/2 with keepalive pings: socket, transparent mode, mTLS', () => {
    const files = makeMtls(dir.path, 'h2');
    const client = files.client('sb-1');
    const renders = [
      runCli(['envoy-config']).stdout,
      runCli(['envoy-config', '--mode', 'transparent']).stdout,
      runCli([
        'envoy-config',
        '--authproxy',
        'authproxy.internal:9443',
        '--authproxy-tls-cert',
        client.cert,
        '--authproxy-tls-key',
        client.key,
        '--authproxy-tls-ca',
        files.ca,
      ]).stdout,
    ];
    for (const yaml of renders) {
      const cluster = parse(yaml).static_resources.clusters.find((c: { name: string }) => c.name === 'authproxy');
      const h2 =
        cluster.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']
          .explicit_http_config.http2_protocol_options;
      expect(h2).toEqual({ connection_keepalive: { interval: '30s', timeout: '15s' } });
    }
  });

  it.skipIf(!bin)('passes envoy --mode validate: Unix socket, mTLS over TCP, strict header list, test DNS', () => {
    envoyValidate(
      dir.path,
      runCli(['envoy-config', '--admin-port', '9901', '--dns-resolver', '127.0.0.1:5353']).stdout,
    );
    const files = makeMtls(dir.path);
    const client = files.client('sb-1');
    const mtls = runCli([
      'envoy-config',
      '--authproxy',
      '127.0.0.1:7000',
      '--authproxy-tls-cert',
      client.cert,
      '--authproxy-tls-key',
      client.key,
      '--authproxy-tls-ca',
      files.ca,
      '--credential-headers',
      'Authorization,x-api-key',
    ]);
    expect(mtls.status).toBe(0);
    expect(mtls.stdout).toContain('allow_expression');
    envoyValidate(dir.path, mtls.stdout);
    // A long strict list (with the credential headers a rewrite strips) is over RE2's default program size of 100.
    const long = runCli([
      'envoy-config',
      '--credential-headers',
      'authorization,x-api-key,anthropic-version,openai-organization,x-goog-user-project',
    ]);
    expect(long.status).toBe(0);
    envoyValidate(dir.path, long.stdout);
  });

  it('lets only the intercepting listener set :authority (rewrite answers), and pins each request to the dial target', () => {
    const doc = parse(runCli(['envoy-config']).stdout);
    const [outer, inner] = doc.static_resources.listeners.map(
      (l: {
        filter_chains: Array<{
          filters: Array<{
            typed_config: { http_filters: Array<{ name: string; typed_config: Record<string, unknown> }> };
          }>;
        }>;
      }) => l.filter_chains[0]!.filters[0]!.typed_config.http_filters,
    );
    expect(outer[0].typed_config.mutation_rules).toEqual({
      disallow_all: true,
      allow_expression: { regex: '^x-authproxy-route$' },
      disallow_is_error: true,
    });
    expect(inner[0].typed_config).toMatchObject({
      mutation_rules: {
        disallow_system: true,
        allow_expression: { regex: '^(:authority|:path)$' },
        disallow_is_error: true,
      },
      metadata_options: { receiving_namespaces: { untyped: ['authproxy'] } },
    });
    expect(inner.map((f: { name: string }) => f.name)).toEqual([
      'envoy.filters.http.ext_proc',
      'envoy.filters.http.set_filter_state',
      'envoy.filters.http.dynamic_forward_proxy',
      'envoy.filters.http.router',
    ]);
    const pins = (
      inner[1].typed_config.on_request_headers as Array<{
        object_key: string;
        format_string: { text_format_source: { inline_string: string } };
      }>
    ).map((p) => [p.object_key, p.format_string.text_format_source.inline_string]);
    expect(pins).toEqual([
      ['envoy.upstream.dynamic_host', '%FILTER_STATE(authproxy.dial_host:PLAIN)%'],
      ['envoy.upstream.dynamic_port', '%FILTER_STATE(authproxy.dial_port:PLAIN)%'],
      ['envoy.upstream.dynamic_host', '%DYNAMIC_METADATA(authproxy:target_host)%'],
      ['envoy.upstream.dynamic_port', '%DYNAMIC_METADATA(authproxy:target_port)%'],
    ]);
  });

  it('refuses TCP to authproxy without mTLS, and a bad sandbox id', () => {
    const tcp = runCli(['envoy-config', '--authproxy', '127.0.0.1:7000']);
    expect(tcp.status).toBe(2);
    expect(tcp.stderr).toContain('mTLS');
    expect(runCli(['envoy-config', '--sandbox-id', 'a b']).status).toBe(2);
  });

  it('ca bundle appends the interception CA to the system roots and refuses a key file', () => {
    expect(runCli(['ca', 'init', '--dir', join(dir.path, 'ca')]).status).toBe(0);
    const system = dir.file(
      'roots.pem',
      readFileSync(join(dir.path, 'ca', 'ca.crt'), 'utf8').replace(/authproxy/g, 'x'),
    );
    const r = runCli(['ca', 'bundle', '--ca-cert', join(dir.path, 'ca', 'ca.crt'), '--system', system]);
    expect(r.status).toBe(0);
    expect(r.stdout.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(r.stdout.trimEnd().endsWith(readFileSync(join(dir.path, 'ca', 'ca.crt'), 'utf8').trimEnd())).toBe(true);
    const key = runCli(['ca', 'bundle', '--ca-cert', join(dir.path, 'ca', 'ca.key'), '--system', system]);
    expect(key.status).toBe(1);
    expect(key.stdout).toBe('');
  });

  it('sandbox-env prints proxy, NO_PROXY, CA variables and env_vars placeholders, never a secret', () => {
    const config = dir.file(
      'config.yaml',
      `
rules:
  - name: openai
    match_hosts: ["api.openai.com"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {OPENAI_API_KEY}" }]
    env_vars: { OPENAI_API_KEY: proxy-injected }
  - name: off
    enabled: false
    match_hosts: ["x.example.com"]
    headers: [{ name: A, type: plaintext, value: "v" }]
    env_vars: { DISABLED_VAR: nope }
no_proxy: ["localhost", "*.internal.example.com", "::1"]
`,
    );
    const r = runCli([
      'sandbox-env',
      '--config',
      config,
      '--proxy-url',
      'http://127.0.0.1:15000',
      '--ca-file',
      '/etc/ca.pem',
      '--format',
      'json',
    ]);
    expect(r.status).toBe(0);
    const env = JSON.parse(r.stdout);
    expect(env).toMatchObject({
      HTTPS_PROXY: 'http://127.0.0.1:15000',
      http_proxy: 'http://127.0.0.1:15000',
      NODE_USE_ENV_PROXY: '1',
      NO_PROXY: 'localhost,.internal.example.com,[::1]',
      SSL_CERT_FILE: '/etc/ca.pem',
      CURL_CA_BUNDLE: '/etc/ca.pem',
      GIT_SSL_CAINFO: '/etc/ca.pem',
      REQUESTS_CA_BUNDLE: '/etc/ca.pem',
      NODE_EXTRA_CA_CERTS: '/etc/ca.pem',
      OPENAI_API_KEY: 'proxy-injected',
    });
    expect(env.DISABLED_VAR).toBeUndefined();
    const shell = runCli(['sandbox-env', '--config', config]).stdout;
    expect(shell).toContain("export OPENAI_API_KEY='proxy-injected'\n");
  });
});
