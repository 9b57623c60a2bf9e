import { describe, expect, it } from 'vitest';
import { canonicalHostname, isIpLiteral, loggableName } from '../../src/sds/hostname.js';

describe('canonicalHostname', () => {
  it.each([
    ['api.github.com', 'api.github.com'],
    ['API.GitHub.COM', 'api.github.com'],
    ['api.github.com.', 'api.github.com'],
    ['localhost', 'localhost'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['a-b.c-d.example', 'a-b.c-d.example'],
    ['127.0.0.1', '127.0.0.1'],
    ['::1', '::1'],
    ['2001:DB8::1', '2001:db8::1'],
    [`${'a'.repeat(63)}.example.com`, `${'a'.repeat(63)}.example.com`],
  ])('accepts %j as %j', (input, expected) => {
    expect(canonicalHostname(input)).toBe(expected);
  });

  it.each([
    ['', 'empty'],
    ['.', 'only a dot'],
    ['*', 'wildcard alone'],
    ['*.example.com', 'wildcard'],
    ['api.github.com:443', 'with a port'],
    ['[::1]', 'bracketed IPv6'],
    ['api..github.com', 'empty label'],
    ['api.github.com..', 'two trailing dots'],
    ['-api.github.com', 'leading hyphen'],
    ['api-.github.com', 'trailing hyphen'],
    ['api_x.github.com', 'underscore'],
    ['api github.com', 'space'],
    ['api.github.com/x', 'path'],
    [`${'a'.repeat(64)}.example.com`, 'label over 63'],
    [`${'a.'.repeat(127)}com`, 'over 253 characters'],
    ['bücher.example', 'non-ASCII'],
    ['\u212Aapi.example.com', 'Kelvin sign that lower-cases to k'],
    ['1.2.3', 'numeric last label'],
    ['127.1', 'short IPv4 form'],
    ['no-sni.invalid\u0000', 'NUL'],
  ])('refuses %j (%s)', (input) => {
    expect(canonicalHostname(input)).toBeUndefined();
  });

  it('tells IP literals from names', () => {
    expect(isIpLiteral('10.0.0.1')).toBe(true);
    expect(isIpLiteral('fe80::1')).toBe(true);
    expect(isIpLiteral('example.com')).toBe(false);
  });

  it('bounds names put in logs', () => {
    expect(loggableName('x'.repeat(1000)).length).toBeLessThan(300);
    expect(loggableName('api.example.com')).toBe('api.example.com');
  });
});
