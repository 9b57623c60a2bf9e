import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, sealWithCli, startCli, type SealTo } from '../helpers/cli.js';
import { exchange, extProcClient, requestHeaders, setHeaders } from '../helpers/extproc-client.js';
import { eventually, tempDir, type TempDir } from '../helpers/fs.js';
import { answer, startCallbackServer } from '../helpers/callback-server.js';
import { writeFileSync } from 'node:fs';

const CANARIES = {
  workspace: 'canary-ws-e1f0a7',
  opaque: 'canary-opaque-77d2c1',
  callbackKey: 'canary-cbkey-19ab3e',
  callbackAnswer: 'canary-cbans-5c04f8',
};

/**
 * A full scenario through the real `authproxy serve` process at debug level: every header type, a
 * callback that works and one that fails, a bad reload, a refused request. No canary may reach the logs.
 */
describe('secrets never reach logs (canary scenario through `authproxy serve`)', () => {
  let dir: TempDir;
  let server: Awaited<ReturnType<typeof startCallbackServer>>;
  let proc: ReturnType<typeof startCli>;
  const socket = () => join(dir.path, 'ext.sock');

  beforeAll(async () => {
    dir = tempDir();
    server = await startCallbackServer((req, res, body) =>
      req.url === '/bad'
        ? res.writeHead(200).end(`{"headers": {"X": "${CANARIES.callbackAnswer}\\r\\n"}}`)
        : answer({ Authorization: `Bearer ${CANARIES.callbackAnswer}` })(req, res, body),
    );
    runCli(['keys', 'init', '--dir', join(dir.path, 'keys')]);
    const seal = (s: string, to: SealTo) => sealWithCli(join(dir.path, 'keys/sealing.pub'), s, to);
    dir.dir('secrets');
    dir.file('secrets/TOKEN', CANARIES.workspace);
    dir.file(
      'config.yaml',
      `
rules:
  - name: ws
    match_hosts: ["ws.example.com"]
    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {TOKEN}" }]
  - name: opaque
    match_hosts: ["opaque.example.com"]
    headers: [{ name: Authorization, type: opaque, value: "${seal(CANARIES.opaque, { hosts: ['opaque.example.com'] })}" }]
callbacks:
  - match_hosts: ["cb.example.com"]
    url: "${server.url}"
    ttl_seconds: 60
    request_headers: [{ name: X-Key, type: opaque, value: "${seal(CANARIES.callbackKey, { callbackUrl: server.url })}" }]
  - match_hosts: ["bad.example.com"]
    url: "${server.base}/bad"
    ttl_seconds: 60
access_control:
  deny_list: ["denied.example.com"]
`,
    );
    proc = startCli([
      'serve',
      '--config',
      join(dir.path, 'config.yaml'),
      '--listen',
      `unix:${socket()}`,
      '--log-level',
      'debug',
      '--egress-allow-cidrs',
      '127.0.0.0/8',
      '--secrets-dir',
      join(dir.path, 'secrets'),
      '--sealing-key',
      join(dir.path, 'keys/sealing.key'),
      '--signing-key',
      join(dir.path, 'keys/signing.key'),
      '--metrics-listen',
      '127.0.0.1:0',
    ]);
    await eventually(
      () => proc.output().includes('authproxy serving') && proc.output().includes('http port serving'),
      10_000,
      'serve to start',
    );
  });
  afterAll(async () => {
    proc?.child.kill('SIGKILL');
    await server?.close();
    dir?.cleanup();
  });

  it('serves /healthz and the signing JWKS on --metrics-listen', async () => {
    const line = proc
      .output()
      .split('\n')
      .find((l) => l.includes('http port serving'))!;
    const base = `http://${JSON.parse(line).listen}`;
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    const served = await (await fetch(`${base}/.well-known/jwks.json`)).json();
    const printed = JSON.parse(runCli(['jwks', '--signing-key', join(dir.path, 'keys/signing.key')]).stdout);
    expect(served).toEqual(printed);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });

  it('injects every kind of credential and logs decisions without values, then exits cleanly on SIGTERM', async () => {
    const client = extProcClient(`unix:${socket()}`);
    const auth = async (host: string, path = '/') =>
      setHeaders(
        (
          await exchange(client, [
            requestHeaders(host, path, { authorization: 'placeholder', 'proxy-authorization': CANARIES.workspace }),
          ])
        ).responses[0]!,
      ).authorization;
    expect(await auth('ws.example.com')).toBe(`Bearer ${CANARIES.workspace}`);
    expect(await auth('opaque.example.com')).toBe(CANARIES.opaque);
    expect(await auth('cb.example.com', `/x?token=${CANARIES.workspace}`)).toBe(`Bearer ${CANARIES.callbackAnswer}`);
    expect(await auth('cb.example.com')).toBe(`Bearer ${CANARIES.callbackAnswer}`);
    expect(server.calls[0]!.headers['x-key']).toBe(CANARIES.callbackKey);
    const bad = (await exchange(client, [requestHeaders('bad.example.com', '/')])).responses[0]!;
    expect(bad.immediate_response?.status.code).toBe('BadGateway');
    const denied = (await exchange(client, [requestHeaders('denied.example.com', '/')])).responses[0]!;
    expect(denied.immediate_response?.status.code).toBe('Forbidden');
    client.close();

    writeFileSync(
      join(dir.path, 'config.yaml'),
      `rules:\n  - name: x\n    match_hosts: ["a.example.com"]\n    headers: [{ name: A, type: opaque, value: "${CANARIES.opaque}" }]\n`,
    );
    await eventually(() => proc.output().includes('config reload rejected'), 10_000, 'reload error');

    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    const output = proc.output();
    expect(output).toContain('"msg":"decision"');
    expect(output).toContain('"rule":"opaque"');
    expect(output).toContain('"reason":"invalid_header"');
    for (const canary of Object.values(CANARIES)) expect(output).not.toContain(canary);
  });
});
