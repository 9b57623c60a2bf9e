import { describe, expect, it } from 'vitest';
import { normaliseAuthority } from '../../src/policy/host.js';

describe('normaliseAuthority', () => {
  it.each([
    ['api.github.com', 'https', 'api.github.com', 443],
    ['api.github.com', 'http', 'api.github.com', 80],
    ['API.GitHub.COM', 'https', 'api.github.com', 443],
    ['api.github.com:8443', 'https', 'api.github.com', 8443],
    ['api.github.com:443', 'http', 'api.github.com', 443],
    ['api.github.com:80', 'https', 'api.github.com', 80],
    ['api.github.com.', 'https', 'api.github.com', 443],
    ['api.github.com.:8080', 'http', 'api.github.com', 8080],
    ['localhost', 'http', 'localhost', 80],
    ['x', 'https', 'x', 443],
    ['a-b.c-d.example', 'https', 'a-b.c-d.example', 443],
    ['xn--bcher-kva.example', 'https', 'xn--bcher-kva.example', 443],
    ['api.github.com:1', 'https', 'api.github.com', 1],
    ['api.github.com:65535', 'https', 'api.github.com', 65535],
    ['api.github.com:00443', 'https', 'api.github.com', 443],
    ['127.0.0.1', 'https', '127.0.0.1', 443],
    ['127.0.0.1:8080', 'http', '127.0.0.1', 8080],
    ['[::1]', 'https', '::1', 443],
    ['[::1]', 'http', '::1', 80],
    ['[::1]:8443', 'https', '::1', 8443],
    ['[2001:DB8::A]:80', 'https', '2001:db8::a', 80],
    ['[::ffff:127.0.0.1]', 'https', '::ffff:127.0.0.1', 443],
  ])('%j (%s) -> %s:%i', (authority, scheme, host, port) => {
    expect(normaliseAuthority(authority, scheme)).toEqual({ host, port });
  });

  it.each([
    ['empty', ''],
    ['only a port', ':443'],
    ['empty port', 'api.github.com:'],
    ['port 0', 'api.github.com:0'],
    ['port too big', 'api.github.com:65536'],
    ['port too long', 'api.github.com:000443'],
    ['signed port', 'api.github.com:+443'],
    ['non-numeric port', 'api.github.com:https'],
    ['two ports', 'api.github.com:443:443'],
    ['userinfo', 'user@api.github.com'],
    ['userinfo with password', 'user:FAKE-pass@api.github.com'],
    ['two trailing dots', 'api.github.com..'],
    ['just a dot', '.'],
    ['empty label', 'api..github.com'],
    ['leading dot', '.github.com'],
    ['label starting with a hyphen', '-api.github.com'],
    ['label ending with a hyphen', 'api-.github.com'],
    ['underscore', 'api_x.github.com'],
    ['space', 'api github.com'],
    ['wildcard', '*.github.com'],
    ['path', 'api.github.com/x'],
    ['label of 64 characters', `${'a'.repeat(64)}.example`],
    ['name of 254 characters', `${'a.'.repeat(126)}ab`],
    ['bare IPv6', '::1'],
    ['unclosed bracket', '[::1'],
    ['bracketed non-IPv6', '[127.0.0.1]'],
    ['bracketed hostname', '[api.github.com]'],
    ['junk after bracket', '[::1]x'],
    ['bad port after bracket', '[::1]:x'],
  ])('%s (%j) is not a host', (_why, authority) => {
    expect(normaliseAuthority(authority, 'https')).toBeUndefined();
  });

  it('accepts a label of 63 characters and a name of 253', () => {
    const label = 'a'.repeat(63);
    expect(normaliseAuthority(`${label}.example`, 'https')?.host).toBe(`${label}.example`);
    const name = `${'a.'.repeat(125)}abc`;
    expect(name).toHaveLength(253);
    expect(normaliseAuthority(name, 'https')?.host).toBe(name);
  });
});
