import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { addSdsService, sandboxIdFrom } from '../../src/sds/server.js';
import { scrubDetail } from '../../src/sds/stream-state.js';
import { LeafCache } from '../../src/sds/leaf-cache.js';
import { captureLogs } from '../helpers/logs.js';

function metadata(...values: string[]): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const v of values) md.add('x-sandbox-id', v);
  return md;
}

describe('sandboxIdFrom', () => {
  it('uses the default when the metadata is absent', () => {
    expect(sandboxIdFrom(new grpc.Metadata(), 'default')).toBe('default');
  });

  it('uses exactly one well-formed id', () => {
    expect(sandboxIdFrom(metadata('sb-123'), 'default')).toBe('sb-123');
    expect(sandboxIdFrom(metadata('tenant.a:sb_1'), 'default')).toBe('tenant.a:sb_1');
  });

  it.each([
    ['two values', ['sb-a', 'sb-b']],
    ['the same value twice', ['sb-a', 'sb-a']],
    ['a comma-joined value', ['sb-a, sb-b']],
    ['an empty value', ['']],
    ['a space', ['sb a']],
    ['a leading dot', ['.sb']],
    ['129 characters', ['a'.repeat(129)]],
  ])('is ambiguous (undefined) for %s', (_what, values) => {
    expect(sandboxIdFrom(metadata(...values), 'default')).toBeUndefined();
  });
});

describe('addSdsService', () => {
  it('refuses a malformed default sandbox id', () => {
    const cache = new LeafCache({ mintLeaf: () => Promise.reject(new Error('unused')) });
    expect(() =>
      addSdsService(new grpc.Server(), {
        leafCache: cache,
        mayMint: () => true,
        defaultSandboxId: 'a b',
        log: captureLogs().log,
      }),
    ).toThrow('defaultSandboxId: "a b" must be 1-128 characters');
  });
});

describe('scrubDetail', () => {
  it('cuts PEM blocks (even unterminated ones) out of a NACK message and bounds its length', () => {
    expect(scrubDetail('bad -----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY----- end')).toBe('bad [pem] end');
    expect(scrubDetail('bad -----BEGIN EC PRIVATE KEY-----\nMIGH')).toBe('bad [pem]');
    expect(scrubDetail('x'.repeat(1000))).toHaveLength(300);
  });
});
