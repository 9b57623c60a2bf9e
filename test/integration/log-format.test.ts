/**
 * `--log-format pretty|json`: JSON lines stay the default; pretty is pino-pretty's layout for a terminal, and the
 * secrets redaction still applies (pino censors before the pretty printer sees a line). Canaries check both
 * the first line of defence (nothing logs a value) and the second (redaction of a value logged by mistake).
 */
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { runCli, startCli } from '../helpers/cli.js';
import { exchange, extProcClient, requestHeaders, setHeaders } from '../helpers/extproc-client.js';
import { eventually, tempDir, type TempDir } from '../helpers/fs.js';

const CANARY = 'canary-pretty-4b7e19';

function capture(): { stream: Writable; text: () => string } {
  let out = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => out };
}

describe('log format', () => {
  it('pretty: pino-pretty lines with the same redaction as JSON', () => {
    const sink = capture();
    const log = createLogger('debug', sink.stream, 'pretty');
    // Values that must never be logged, logged by mistake under every censored key.
    log.warn(
      {
        sandbox: 'sb-1',
        token: CANARY,
        headers: { authorization: CANARY },
        rule: { value: CANARY },
        authorization: `Bearer ${CANARY}`,
      },
      'callback resolution failed',
    );
    log.debug({ sandbox: 'sb-1', outcome: 'inject', reason: 'rule' }, 'decision');
    const text = sink.text();
    expect(text).not.toContain(CANARY);
    expect(text).toContain('[redacted]');
    expect(text).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: callback resolution failed$/m);
    expect(text).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] DEBUG: decision$/m);
    expect(text).toMatch(/^ {4}outcome: "inject"$/m);
    expect(text).not.toMatch(/^\{/m); // no JSON line
    expect(text).not.toContain('\u001b['); // no colours when not writing to a terminal

    const json = capture();
    createLogger('info', json.stream).warn({ token: CANARY }, 'x');
    expect(JSON.parse(json.text())).toMatchObject({ level: 40, token: '[redacted]', msg: 'x', service: 'authproxy' });
  });

  describe('authproxy serve --log-format', () => {
    let dir: TempDir;
    beforeAll(() => {
      dir = tempDir();
      dir.dir('secrets');
      dir.file('secrets/TOKEN', CANARY);
      dir.file(
        'config.yaml',
        'rules:\n  - name: ws\n    match_hosts: ["ws.example.com"]\n    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {TOKEN}" }]\n',
      );
    });
    afterAll(() => dir.cleanup());

    const serve = (extra: string[], env: Record<string, string> = {}) =>
      startCli(
        [
          'serve',
          '--config',
          join(dir.path, 'config.yaml'),
          '--secrets-dir',
          join(dir.path, 'secrets'),
          '--listen',
          `unix:${join(dir.path, `s-${Math.random().toString(36).slice(2, 8)}.sock`)}`,
          '--log-level',
          'debug',
          ...extra,
        ],
        env,
      );

    it('pretty: readable lines, a decision at debug, a rejected reload, and never the secret', async () => {
      const proc = serve(['--log-format', 'pretty']);
      try {
        await eventually(() => proc.output().includes('INFO: authproxy serving'), 10_000, 'serve to start');
        const socket = /listen: "unix:([^"]+)"/.exec(proc.output())![1]!;
        const client = extProcClient(`unix:${socket}`);
        const r = await exchange(client, [requestHeaders('ws.example.com', '/x', { authorization: CANARY })]);
        client.close();
        expect(setHeaders(r.responses[0]!).authorization).toBe(`Bearer ${CANARY}`); // injected...
        await eventually(() => proc.output().includes('DEBUG: decision'), 5000, 'the decision line');
        dir.file(
          'config.yaml',
          'rules:\n  - name: ws\n    match_hosts: ["ws.example.com"]\n    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {NOPE}" }]\n',
        );
        await eventually(() => proc.output().includes('ERROR: config reload rejected'), 8000, 'the rejected reload');
        const out = proc.output();
        expect(out).not.toContain(CANARY); // ...and never logged
        expect(out).toMatch(/^ {4}outcome: "inject"$/m);
        expect(out.split('\n').filter((l) => l.startsWith('{'))).toEqual([]);
      } finally {
        proc.child.kill('SIGKILL');
        dir.file(
          'config.yaml',
          'rules:\n  - name: ws\n    match_hosts: ["ws.example.com"]\n    headers: [{ name: Authorization, type: workspace_secret, value: "Bearer {TOKEN}" }]\n',
        );
      }
    });

    it('JSON by default; AUTHPROXY_LOG_FORMAT is the env twin; anything else is a usage error', async () => {
      const json = serve([]);
      const pretty = serve([], { AUTHPROXY_LOG_FORMAT: 'pretty' });
      try {
        await eventually(
          () => json.output().includes('authproxy serving') && pretty.output().includes('INFO: authproxy serving'),
          10_000,
          'both to start',
        );
        const lines = json.output().trim().split('\n');
        for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
        expect(lines.map((l) => JSON.parse(l).msg)).toContain('authproxy serving');
      } finally {
        json.child.kill('SIGKILL');
        pretty.child.kill('SIGKILL');
      }
      const bad = runCli([
        'serve',
        '--config',
        join(dir.path, 'config.yaml'),
        '--listen',
        'unix:/tmp/never.sock',
        '--log-format',
        'xml',
      ]);
      expect(bad.status).toBe(2);
      expect(bad.stderr.trim()).toBe('authproxy: --log-format: "xml" must be one of json, pretty');
      const up = runCli(['up', '--config', join(dir.path, 'config.yaml'), '--print-env', '--log-format', 'yaml']);
      expect(up.status).toBe(2);
      expect(up.stderr).toContain('--log-format: "yaml" must be one of json, pretty');
    });
  });
});
