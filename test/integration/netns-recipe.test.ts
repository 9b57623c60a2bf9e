/**
 * What the namespace recipe (scripts/transparent-netns.sh) relies on: `sandbox-net --apply NETNS` lets
 * DNS through to the namespace's own resolver (/etc/netns/NETNS/resolv.conf, which `ip netns exec`
 * bind-mounts), not the host's; and `serve --listen unix:DIR/x.sock` with a missing DIR says so in one line.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolvConfFor } from '../../src/cli/net-command.js';
import { runCli } from '../helpers/cli.js';
import { tempDir, type TempDir } from '../helpers/fs.js';
import { netnsUnavailable } from '../helpers/netns.js';

const EXAMPLES = new URL('../../examples/', import.meta.url).pathname;

describe('the resolver sandbox-net lets through', () => {
  let dir: TempDir;
  beforeAll(() => {
    dir = tempDir();
  });
  afterAll(() => dir.cleanup());

  it("is the namespace's resolv.conf when it has one, else /etc/resolv.conf", () => {
    dir.file('resolv.conf', 'nameserver 10.0.0.1\n');
    expect(resolvConfFor(undefined, dir.path)).toBe(join(dir.path, 'resolv.conf'));
    expect(resolvConfFor('sb', dir.path)).toBe(join(dir.path, 'resolv.conf'));
    dir.dir('netns/sb');
    dir.file('netns/sb/resolv.conf', 'nameserver 192.0.2.99\n');
    expect(resolvConfFor('sb', dir.path)).toBe(join(dir.path, 'netns/sb/resolv.conf'));
    expect(resolvConfFor('other', dir.path)).toBe(join(dir.path, 'resolv.conf'));
  });

  const unavailable = netnsUnavailable();
  it.skipIf(Boolean(unavailable) && process.env.CI !== 'true')(
    'sandbox-net --apply NETNS without --dns-resolver opens DNS to the namespace resolver only',
    () => {
      const ns = `aprc-${randomBytes(3).toString('hex')}`;
      const etc = `/etc/netns/${ns}`;
      try {
        expect(spawnSync('ip', ['netns', 'add', ns]).status).toBe(0);
        mkdirSync(etc, { recursive: true });
        writeFileSync(`${etc}/resolv.conf`, 'nameserver 192.0.2.99\n');
        const applied = runCli(['sandbox-net', '--apply', ns, '--listener-port', '15001', '--envoy-uid', '1337']);
        expect(applied.stderr).toBe('');
        const rules = spawnSync('ip', ['netns', 'exec', ns, 'iptables', '-S', 'AUTHPROXY_OUTPUT'], {
          encoding: 'utf8',
        }).stdout;
        expect(rules).toContain('-d 192.0.2.99/32 -p udp -m udp --dport 53 -j RETURN');
        expect(rules.match(/--dport 53 -j RETURN/g)).toHaveLength(2); // udp and tcp to that one resolver, nothing else
      } finally {
        spawnSync('ip', ['netns', 'del', ns]);
        rmSync(etc, { recursive: true, force: true });
        spawnSync('rmdir', ['/etc/netns']);
      }
    },
  );
});

describe('serve --listen unix:DIR/SOCKET', () => {
  it('names the missing directory in one line', () => {
    const dir = tempDir();
    try {
      const missing = join(dir.path, 'run', 'authproxy');
      const r = runCli([
        'serve',
        '--config',
        join(EXAMPLES, 'config.yaml'),
        '--secrets-dir',
        join(EXAMPLES, 'secrets'),
        '--listen',
        `unix:${missing}/authproxy.sock`,
      ]);
      expect(r.status).toBe(2);
      const uid = process.getuid?.();
      expect(r.stderr).toBe(
        `authproxy: --listen: the socket's directory ${missing} does not exist: create it, owned by the user authproxy runs as (uid ${uid}) and closed to others (install -d -m 0750 -o USER ${missing})\n`,
      );
    } finally {
      dir.cleanup();
    }
  });
});
