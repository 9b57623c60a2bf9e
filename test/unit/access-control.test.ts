import { RE2JS } from 're2js';
import { describe, expect, it, vi } from 'vitest';
import { parseAccessEntry, type AccessEntry } from '../../src/config/access-pattern.js';
import { compilePolicy } from '../../src/config/compile.js';
import { validateConfig } from '../../src/config/load.js';
import type { ProxyConfigInput } from '../../src/config/schema.js';
import { AccessList } from '../../src/policy/access.js';
import type { CompiledPolicy } from '../../src/policy/compiled.js';
import { decideRoute, mayIntercept } from '../../src/policy/connect.js';
import { decide } from '../../src/policy/decide.js';
import { thrown } from './support.js';

/** The entry with its compiled regex left out, so tables can compare plain data. */
function parsed(raw: string): unknown {
  const result = parseAccessEntry(raw);
  if (!result.ok) return result.problem;
  const { regex: _compiled, ...rest } = result.entry as AccessEntry & { regex?: unknown };
  return rest;
}

function list(...entries: string[]): AccessList {
  return new AccessList(
    entries.map((raw) => {
      const result = parseAccessEntry(raw);
      if (!result.ok) throw new Error(result.problem);
      return result.entry;
    }),
  );
}

function policy(config: ProxyConfigInput): CompiledPolicy {
  return compilePolicy(validateConfig(config, 'T'), { secrets: new Map(), unsealer: undefined });
}

const RULE = {
  name: 'gh',
  match_hosts: ['api.github.com'],
  headers: [{ name: 'Authorization', type: 'plaintext' as const, value: 'Bearer t' }],
};

describe('parseAccessEntry: every entry kind', () => {
  it.each<[string, unknown]>([
    ['api.github.com', { kind: 'host', host: 'api.github.com', port: undefined }],
    ['API.GitHub.com:8443', { kind: 'host', host: 'api.github.com', port: 8443 }],
    ['*.github.com', { kind: 'suffix', domain: 'github.com', port: undefined }],
    ['*.github.com:22', { kind: 'suffix', domain: 'github.com', port: 22 }],
    ['*', { kind: 'any', port: undefined }],
    ['*:443', { kind: 'any', port: 443 }],
    ['~^api\\.(github|gitlab)\\.com$', { kind: 'regex', source: '^api\\.(github|gitlab)\\.com$' }],
    ['1.2.3.4', { kind: 'ip', address: '1.2.3.4', family: 4, port: undefined }],
    ['1.2.3.4:443', { kind: 'ip', address: '1.2.3.4', family: 4, port: 443 }],
    ['::1', { kind: 'ip', address: '::1', family: 6, port: undefined }],
    ['[::1]', { kind: 'ip', address: '::1', family: 6, port: undefined }],
    ['[::1]:22', { kind: 'ip', address: '::1', family: 6, port: 22 }],
    ['10.0.0.0/8', { kind: 'cidr', address: '10.0.0.0', prefix: 8, family: 4 }],
    ['fd00::/8', { kind: 'cidr', address: 'fd00::', prefix: 8, family: 6 }],
    ['[fd00::]/8', { kind: 'cidr', address: 'fd00::', prefix: 8, family: 6 }],
    ['0.0.0.0/0', { kind: 'cidr', address: '0.0.0.0', prefix: 0, family: 4 }],
    ['api.github.com:1', { kind: 'host', host: 'api.github.com', port: 1 }],
    ['api.github.com:65535', { kind: 'host', host: 'api.github.com', port: 65535 }],
  ])('%s', (raw, expected) => expect(parsed(raw)).toEqual(expected));

  it('compiles a regex once, at parse time', () => {
    const result = parseAccessEntry('~github');
    expect(result.ok && result.entry.kind === 'regex' && result.entry.regex).toBeInstanceOf(RE2JS);
  });
});

describe('parseAccessEntry: invalid entries, each message exact', () => {
  const regex300 = `~${'a'.repeat(300)}`;
  const host300 = `${'a'.repeat(300)}.com`;
  it.each<[string, string]>([
    ['', 'must be a non-empty entry without leading or trailing spaces'],
    [' api.github.com', 'must be a non-empty entry without leading or trailing spaces'],
    ['api.github.com:0', '"api.github.com:0" has a port outside 1..65535'],
    ['api.github.com:70000', '"api.github.com:70000" has a port outside 1..65535'],
    ['*:65536', '"*:65536" has a port outside 1..65535'],
    ['[::1]:0', '"[::1]:0" has a port outside 1..65535'],
    ['1.2.3.4:99999999999999', '"1.2.3.4:99999999999999" has a port outside 1..65535'],
    ['api.github.com:https', '"api.github.com:https" has a port that is not a number (expected 1..65535)'],
    ['api.github.com:', '"api.github.com:" has a port that is not a number (expected 1..65535)'],
    ['10.0.0.0/8:443', '"10.0.0.0/8:443" is a CIDR with a port: a CIDR matches every port, so drop the ":PORT"'],
    ['[fd00::]/8:443', '"[fd00::]/8:443" is a CIDR with a port: a CIDR matches every port, so drop the ":PORT"'],
    ['10.0.0.0/33', '"10.0.0.0/33" is not a valid CIDR: the prefix length of an IPv4 CIDR is 0..32'],
    ['fd00::/129', '"fd00::/129" is not a valid CIDR: the prefix length of an IPv6 CIDR is 0..128'],
    ['10.0.0.0/x', '"10.0.0.0/x" is not a valid CIDR: the prefix length of an IPv4 CIDR is 0..32'],
    ['~(', '"~(" is not a valid RE2 regex: missing closing )'],
    ['~(?=api)', '"~(?=api)" is not a valid RE2 regex: invalid or unsupported Perl syntax'],
    ['~(a)\\1', '"~(a)\\1" is not a valid RE2 regex: invalid escape sequence'],
    ['~', '"~" has an empty regex (use "*" to match every hostname)'],
    [regex300, `"~${'a'.repeat(76)}..." is too long: a regex may have at most 256 characters (this one has 300)`],
    [
      'https://api.github.com',
      '"https://api.github.com" is not a valid access_control entry: expected host, host:PORT, *.domain, *.domain:PORT, *, *:PORT, ~regex, an IP address (with or without a port) or a CIDR',
    ],
    [
      'api.github.com/repos',
      '"api.github.com/repos" is not a valid access_control entry: expected host, host:PORT, *.domain, *.domain:PORT, *, *:PORT, ~regex, an IP address (with or without a port) or a CIDR',
    ],
    [
      'user@api.github.com',
      '"user@api.github.com" is not a valid access_control entry: expected host, host:PORT, *.domain, *.domain:PORT, *, *:PORT, ~regex, an IP address (with or without a port) or a CIDR',
    ],
    [
      ':443',
      '":443" is not a valid access_control entry: expected host, host:PORT, *.domain, *.domain:PORT, *, *:PORT, ~regex, an IP address (with or without a port) or a CIDR',
    ],
    [
      '[api.github.com]:443',
      '"[api.github.com]:443" is not a valid access_control entry: only an IPv6 address goes in brackets',
    ],
    [
      '::ffff:1.2.3.4:443',
      '"::ffff:1.2.3.4:443" is ambiguous: write an IPv6 address with a port in brackets, as in "[::1]:22"',
    ],
    ['fe80::1%eth0', '"fe80::1%eth0" has an IPv6 zone id, which access_control does not support'],
    ['300.1.2.3', '"300.1.2.3" looks like an IP address but is not a valid one'],
    ['*.com', '"*.com" is too broad: a wildcard needs a domain of at least two labels'],
    ['*.co.uk:443', '"*.co.uk" is too broad: co.uk is a public suffix'],
    ['api.*.com', '"api.*.com" may contain "*" only as "*.domain"'],
    ['**', '"**" may contain "*" only as "*.domain"'],
    ['bad_name.example.com', '"bad_name.example.com" is not a valid hostname'],
    ['github.com.', '"github.com." must not end with a dot'],
    [host300, `"${'a'.repeat(77)}..." is not a valid hostname`],
  ])('%j', (raw, message) => expect(parseAccessEntry(raw)).toEqual({ ok: false, problem: message }));

  it('accepts a regex of exactly 256 characters', () => {
    expect(parseAccessEntry(`~${'a'.repeat(256)}`).ok).toBe(true);
  });

  it('never echoes more than about 80 characters of an entry', () => {
    for (const raw of [regex300, host300, `${'x'.repeat(500)}:0`, `~(${'a'.repeat(200)}`]) {
      const result = parseAccessEntry(raw);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.problem.match(/"[^"]*"/)![0]!.length).toBeLessThanOrEqual(82);
    }
  });
});

describe('config validation of access_control', () => {
  it('names the field of every bad entry', () => {
    const err = thrown(() =>
      validateConfig({ access_control: { deny_list: ['ok.example.com', 'a.example.com:0', '~['] } }, 'api'),
    );
    expect(err.problems).toEqual([
      'api: access_control.deny_list[1]: "a.example.com:0" has a port outside 1..65535',
      'api: access_control.deny_list[2]: "~[" is not a valid RE2 regex: missing closing ]',
    ]);
  });

  it('refuses two populated lists, and an access_control with neither list', () => {
    expect(
      thrown(() =>
        validateConfig({ access_control: { allow_list: ['a.example.com'], deny_list: ['b.example.com'] } }, 'X'),
      ).problems,
    ).toEqual(['X: access_control: only one of allow_list or deny_list may be populated (both have entries)']);
    expect(thrown(() => validateConfig({ access_control: {} }, 'X')).problems).toEqual([
      'X: access_control: set exactly one of allow_list or deny_list',
    ]);
  });

  it('an empty list beside the other counts as not set (LangChain: only one list may be populated)', () => {
    expect(policy({ access_control: { allow_list: [], deny_list: ['evil.example.com'] } }).access?.mode).toBe('deny');
    expect(policy({ access_control: { allow_list: ['api.github.com'], deny_list: [] } }).access?.mode).toBe('allow');
    expect(policy({ access_control: { allow_list: [], deny_list: [] } }).access).toBeUndefined();
    expect(policy({ access_control: { deny_list: [] } }).access).toBeUndefined();
  });

  it('an allow_list given alone and empty allows nothing (fails closed)', () => {
    const p = policy({ access_control: { allow_list: [] } });
    expect(p.access?.mode).toBe('allow');
    expect(decideRoute(p, 'CONNECT', 'api.github.com:443')).toMatchObject({
      outcome: 'refuse',
      reason: 'access_denied',
    });
  });

  it('stores entries lower-cased, except regexes (lower-casing \\D would make it \\d)', () => {
    const config = validateConfig(
      { access_control: { allow_list: ['API.GitHub.com:443', '~^\\D+\\.Example$', '[FD00::1]:22'] } },
      'X',
    );
    expect(config.access_control?.allow_list).toEqual(['api.github.com:443', '~^\\D+\\.Example$', '[fd00::1]:22']);
  });
});

describe('AccessList.matches', () => {
  const hosts = list(
    'api.github.com',
    'ssh.example.com:22',
    'ssh.example.com:2222',
    '*.cdn.example.com',
    '*.git.example.com:443',
  );
  it.each<[string, number, boolean]>([
    ['api.github.com', 443, true],
    ['api.github.com', 8443, true],
    ['github.com', 443, false],
    ['x.api.github.com', 443, false],
    ['ssh.example.com', 22, true],
    ['ssh.example.com', 2222, true],
    ['ssh.example.com', 443, false],
    ['a.cdn.example.com', 80, true],
    ['a.b.cdn.example.com', 443, true],
    ['cdn.example.com', 443, false],
    ['xcdn.example.com', 443, false],
    ['a.git.example.com', 443, true],
    ['a.git.example.com', 80, false],
    ['git.example.com', 443, false],
  ])('hostnames: %s:%i -> %s', (host, port, expected) => expect(hosts.matches(host, port)).toBe(expected));

  const star = list('*', '10.0.0.0/8');
  const starPort = list('*:443');
  it.each<[AccessList, string, number, boolean]>([
    [star, 'anything.example', 1, true],
    [star, 'localhost', 65535, true],
    [star, '1.2.3.4', 443, false],
    [star, '::1', 443, false],
    [star, '10.1.2.3', 22, true],
    [starPort, 'anything.example', 443, true],
    [starPort, 'anything.example', 80, false],
    [starPort, '1.2.3.4', 443, false],
  ])('"*" names every hostname, never an IP literal: %#', (l, host, port, expected) =>
    expect(l.matches(host, port)).toBe(expected),
  );

  const ips = list('1.2.3.4', '5.6.7.8:443', '::1', '[2001:db8::5]:22', '10.0.0.0/8', 'fd00::/8', '192.168.1.0/24');
  it.each<[string, number, boolean]>([
    ['1.2.3.4', 1, true],
    ['1.2.3.5', 443, false],
    ['5.6.7.8', 443, true],
    ['5.6.7.8', 80, false],
    ['::1', 443, true],
    ['0:0::1', 443, true],
    ['0000:0000:0000:0000:0000:0000:0000:0001', 8080, true],
    ['2001:db8:0:0:0:0:0:5', 22, true],
    ['2001:db8::5', 23, false],
    ['10.255.0.1', 22, true],
    ['11.0.0.1', 22, false],
    ['fd12:3456::1', 443, true],
    ['fe80::1', 443, false],
    ['192.168.1.200', 80, true],
    ['192.168.2.1', 80, false],
    ['::ffff:10.1.2.3', 443, true],
    ['::ffff:1.2.3.4', 443, true],
  ])('IPs and CIDRs: %s port %i -> %s', (host, port, expected) => expect(ips.matches(host, port)).toBe(expected));

  it('hostname entries never match IP literals, and IP entries never match hostnames', () => {
    expect(list('1.2.3.4', '10.0.0.0/8').matches('one.two.example', 443)).toBe(false);
    expect(list('~.*', '*').matches('1.2.3.4', 443)).toBe(false);
    expect(list('~.*', '*').matches('::1', 443)).toBe(false);
  });

  it('reads numeric hosts as the IPv4 address a resolver would see (no slipping past IP entries)', () => {
    const loopback = list('127.0.0.0/8');
    for (const host of ['2130706433', '0x7f.1', '127.1', '0177.0.0.1', '0x7f000001'])
      expect(loopback.matches(host, 443), host).toBe(true);
    expect(list('*').matches('2130706433', 443)).toBe(false);
    expect(list('*').matches('1.2.3.999', 443)).toBe(false);
  });

  it('regexes search the hostname, unanchored, on every port (RE2 semantics)', () => {
    const unanchored = list('~github');
    expect(unanchored.matches('api.github.com', 443)).toBe(true);
    expect(unanchored.matches('github.com.evil.example', 22)).toBe(true);
    expect(unanchored.matches('gitlab.com', 443)).toBe(false);
    const anchored = list('~^(api|uploads)\\.github\\.com$');
    expect(anchored.matches('api.github.com', 1)).toBe(true);
    expect(anchored.matches('uploads.github.com', 65535)).toBe(true);
    expect(anchored.matches('api.github.com.evil.example', 443)).toBe(false);
    expect(anchored.matches('x.api.github.com', 443)).toBe(false);
    expect(list('~(?i)^API\\.').matches('api.example.com', 443)).toBe(true);
  });

  it('matches in linear time, even for a pattern that backtracking engines explode on', () => {
    const evil = list('~^(a+)+$');
    const start = performance.now();
    expect(evil.matches(`${'a'.repeat(5000)}!`, 443)).toBe(false);
    expect(performance.now() - start).toBeLessThan(1000);
  });

  it('answers "on some port" and "on every port" for SDS, which knows no port', () => {
    const l = list('a.example.com:8443', 'b.example.com', '1.2.3.4:22', '*.c.example.com:443');
    expect([l.matchesOnSomePort('a.example.com'), l.matchesOnEveryPort('a.example.com')]).toEqual([true, false]);
    expect([l.matchesOnSomePort('b.example.com'), l.matchesOnEveryPort('b.example.com')]).toEqual([true, true]);
    expect([l.matchesOnSomePort('1.2.3.4'), l.matchesOnEveryPort('1.2.3.4')]).toEqual([true, false]);
    expect([l.matchesOnSomePort('x.c.example.com'), l.matchesOnEveryPort('x.c.example.com')]).toEqual([true, false]);
    expect(l.matchesOnSomePort('z.example.com')).toBe(false);
  });
});

describe('allow vs deny through decide() and decideRoute()', () => {
  const allow = policy({
    rules: [RULE],
    access_control: {
      allow_list: ['api.github.com:443', '*.example.com', '~^raw\\.', '[::1]:8080', '10.0.0.0/8', '*:8000'],
    },
  });
  const deny = policy({
    rules: [RULE],
    access_control: {
      deny_list: [
        'evil.example.com',
        'smtp.example.com:25',
        '*.tracker.example',
        '169.254.169.254',
        'fd00::/8',
        '~^ads\\.',
      ],
    },
  });
  const run = (p: CompiledPolicy, authority: string, scheme = 'https') => {
    const d = decide(p, { method: 'GET', scheme, authority, path: '/' });
    return d.outcome === 'refuse' ? `refuse ${d.status} ${d.reason}` : d.outcome;
  };

  it.each<[string, string, string]>([
    ['api.github.com', 'https', 'inject'],
    ['api.github.com:443', 'https', 'inject'],
    ['api.github.com:8443', 'https', 'refuse 403 access_denied'],
    ['api.github.com', 'http', 'refuse 403 access_denied'],
    ['api.github.com:443', 'http', 'refuse 403 cleartext'],
    ['a.example.com', 'http', 'pass'],
    ['example.com', 'https', 'refuse 403 access_denied'],
    ['raw.githubusercontent.com:9999', 'https', 'pass'],
    ['[::1]:8080', 'http', 'pass'],
    ['[0:0::1]:8080', 'http', 'pass'],
    ['[::1]', 'http', 'refuse 403 access_denied'],
    ['10.9.8.7', 'https', 'pass'],
    ['11.0.0.1', 'https', 'refuse 403 access_denied'],
    ['anything.test:8000', 'http', 'pass'],
    ['1.2.3.4:8000', 'http', 'refuse 403 access_denied'],
  ])('allow_list: %s (%s) -> %s', (authority, scheme, expected) =>
    expect(run(allow, authority, scheme)).toBe(expected),
  );

  it.each<[string, string, string]>([
    ['evil.example.com', 'https', 'refuse 403 access_denied'],
    ['evil.example.com:8443', 'https', 'refuse 403 access_denied'],
    ['smtp.example.com:25', 'http', 'refuse 403 access_denied'],
    ['smtp.example.com', 'https', 'pass'],
    ['x.tracker.example', 'https', 'refuse 403 access_denied'],
    ['tracker.example', 'https', 'pass'],
    ['169.254.169.254', 'http', 'refuse 403 access_denied'],
    ['[fd00::1]:443', 'https', 'refuse 403 access_denied'],
    ['ads.example.net', 'https', 'refuse 403 access_denied'],
    ['api.github.com', 'https', 'inject'],
  ])('deny_list: %s (%s) -> %s', (authority, scheme, expected) => expect(run(deny, authority, scheme)).toBe(expected));

  it.each<[CompiledPolicy, string, string, string]>([
    [allow, 'CONNECT', 'api.github.com:443', 'intercept'],
    [allow, 'CONNECT', 'api.github.com:8443', 'refuse'],
    [allow, 'CONNECT', 'a.example.com:22', 'tunnel'],
    [allow, 'CONNECT', '[::1]:8080', 'tunnel'],
    [allow, 'CONNECT', '[::1]:22', 'refuse'],
    [allow, 'GET', 'a.example.com', 'tunnel'],
    [allow, 'GET', 'raw.example.org', 'tunnel'],
    [allow, 'GET', 'other.example.org', 'refuse'],
    [deny, 'CONNECT', 'smtp.example.com:25', 'refuse'],
    [deny, 'CONNECT', 'smtp.example.com:443', 'tunnel'],
    [deny, 'GET', 'smtp.example.com:25', 'refuse'],
    [deny, 'CONNECT', '[fd00::1]:443', 'refuse'],
    [deny, 'CONNECT', 'api.github.com:443', 'intercept'],
  ])('decideRoute %#: %s %s -> %s', (p, method, authority, outcome) =>
    expect(decideRoute(p, method, authority).outcome).toBe(outcome),
  );

  it('refuses with access_denied and the normalised target', () => {
    expect(decideRoute(allow, 'CONNECT', 'API.GitHub.com.:8443')).toEqual({
      outcome: 'refuse',
      status: 403,
      reason: 'access_denied',
      target: { host: 'api.github.com', port: 8443 },
    });
  });

  it('mints a certificate for a host allowed on some port only (SDS knows no port)', () => {
    const onlyAlt = policy({ rules: [RULE], access_control: { allow_list: ['api.github.com:8443'] } });
    expect(mayIntercept(onlyAlt, 'api.github.com')).toBe(true);
    expect(decideRoute(onlyAlt, 'CONNECT', 'api.github.com:443').outcome).toBe('refuse');
    expect(
      mayIntercept(policy({ rules: [RULE], access_control: { deny_list: ['api.github.com:443'] } }), 'api.github.com'),
    ).toBe(true);
    expect(
      mayIntercept(policy({ rules: [RULE], access_control: { deny_list: ['api.github.com'] } }), 'api.github.com'),
    ).toBe(false);
    expect(
      mayIntercept(policy({ rules: [RULE], access_control: { allow_list: ['other.example.com'] } }), 'api.github.com'),
    ).toBe(false);
  });

  it('compiles regexes once per config compile, never per request', () => {
    const p = policy({ access_control: { allow_list: ['~^api\\.', '~\\.example$'] } });
    const compile = vi.spyOn(RE2JS, 'compile');
    try {
      for (let i = 0; i < 100; i++) run(p, `api${i}.example:443`);
      expect(compile).not.toHaveBeenCalled();
    } finally {
      compile.mockRestore();
    }
  });
});
