import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../src/config/compile.js';
import { validateConfig } from '../../src/config/load.js';
import { explain } from '../../src/cli/explain.js';
import { redactUrl } from '../../src/policy/compiled.js';

const CANARY = 'canary-query-key-6b1d';

describe('callback URLs are shown without their query', () => {
  it('redactUrl keeps scheme, host, port and path only', () => {
    expect(redactUrl('https://t.example:8443/resolve')).toBe('https://t.example:8443/resolve');
    expect(redactUrl(`https://t.example/resolve?key=${CANARY}`)).toBe('https://t.example/resolve?[redacted]');
    expect(redactUrl('https://t.example/resolve#frag')).toBe('https://t.example/resolve?[redacted]');
  });

  it('explain and compile errors never show a key placed in the query', () => {
    const config = validateConfig(
      { callbacks: [{ match_hosts: ['api.example.com'], url: `https://t.example/r?key=${CANARY}`, ttl_seconds: 60 }] },
      't',
    );
    const out = JSON.stringify(
      explain(
        compilePolicy(config, { secrets: new Map(), unsealer: undefined }),
        'GET',
        'https://api.example.com/',
        'sb',
      ),
    );
    expect(out).toContain('https://t.example/r?[redacted]');
    expect(out).not.toContain(CANARY);
    const bad = validateConfig(
      {
        callbacks: [
          {
            match_hosts: ['api.example.com'],
            url: `https://t.example/r?key=${CANARY}`,
            ttl_seconds: 60,
            request_headers: [{ name: 'K', type: 'opaque', value: 'plain' }],
          },
        ],
      },
      't',
    );
    expect(() => compilePolicy(bad, { secrets: new Map(), unsealer: undefined })).toThrow(
      /callback https:\/\/t\.example\/r\?\[redacted\]/,
    );
    try {
      compilePolicy(bad, { secrets: new Map(), unsealer: undefined });
    } catch (err) {
      expect(String(err)).not.toContain(CANARY);
    }
  });
});
