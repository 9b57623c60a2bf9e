import { describe, expect, it } from 'vitest';
import { HostIndex } from '../../src/policy/host-index.js';

/** Entries as compile adds them: ascending positions, canonical patterns. */
function index(entries: readonly (readonly string[])[]): HostIndex {
  const idx = new HostIndex();
  entries.forEach((patterns, position) => idx.add(position, patterns));
  return idx;
}

describe('HostIndex', () => {
  const idx = index([
    ['*.github.com'], // 0
    ['api.github.com'], // 1
    ['*.api.github.com', 'uploads.github.com'], // 2
    ['github.com', '*.example.com'], // 3
    ['api.github.com', '*.github.com'], // 4: matches api.github.com twice
    ['*.b.example.com'], // 5
  ]);

  it.each([
    ['api.github.com', [0, 1, 4], 0],
    ['uploads.github.com', [0, 2, 4], 0],
    ['x.api.github.com', [0, 2, 4], 0],
    ['github.com', [3], 3],
    ['a.example.com', [3], 3],
    ['a.b.example.com', [3, 5], 3],
    ['b.example.com', [3], 3],
    ['example.com', [], undefined],
    ['com', [], undefined],
    ['githubxcom', [], undefined],
    ['evilgithub.com', [], undefined],
    ['github.com.evil.example', [], undefined],
    ['', [], undefined],
  ])('%j: all %j, first %s', (host, all, first) => {
    expect(idx.all(host)).toEqual(all);
    expect(idx.first(host)).toBe(first);
    expect(idx.has(host)).toBe(first !== undefined);
  });

  it('a wildcard never matches its own domain', () => {
    const only = index([['*.github.com']]);
    expect(only.has('github.com')).toBe(false);
    expect(only.has('a.github.com')).toBe(true);
    expect(only.has('a.b.c.github.com')).toBe(true);
  });

  it('first picks the lowest position whether it is exact or wildcard', () => {
    const exactFirst = index([['api.github.com'], ['*.github.com']]);
    const wildFirst = index([['*.github.com'], ['api.github.com']]);
    const deepFirst = index([['*.api.github.com'], ['*.github.com'], ['x.api.github.com']]);
    expect(exactFirst.first('api.github.com')).toBe(0);
    expect(wildFirst.first('api.github.com')).toBe(0);
    expect(deepFirst.first('x.api.github.com')).toBe(0);
    expect(deepFirst.all('x.api.github.com')).toEqual([0, 1, 2]);
    const shallowFirst = index([['*.github.com'], ['*.api.github.com']]);
    expect(shallowFirst.first('x.api.github.com')).toBe(0);
    expect(shallowFirst.all('x.api.github.com')).toEqual([0, 1]);
  });

  it('lists a position once even when several of its patterns match', () => {
    const idx2 = index([['a.example.com', 'a.example.com', '*.example.com'], ['*.example.com']]);
    expect(idx2.all('a.example.com')).toEqual([0, 1]);
    expect(idx2.all('b.example.com')).toEqual([0, 1]);
  });

  it('matches exactly (lookups are by the canonical, lower-case host)', () => {
    const idx2 = index([['127.0.0.1', '::1', 'localhost']]);
    expect(idx2.has('127.0.0.1')).toBe(true);
    expect(idx2.has('::1')).toBe(true);
    expect(idx2.has('localhost')).toBe(true);
    expect(idx2.has('0.0.1')).toBe(false);
    expect(idx2.has('127.0.0.2')).toBe(false);
  });

  it('an empty index matches nothing', () => {
    const empty = new HostIndex();
    expect(empty.all('a.b')).toEqual([]);
    expect(empty.first('a.b')).toBeUndefined();
  });
});
