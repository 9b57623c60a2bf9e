import { describe, expect, it } from 'vitest';
import { toPolicyRequest } from '../../src/extproc/translate.js';
import { compilePolicy } from '../../src/config/compile.js';
import { validateConfig } from '../../src/config/load.js';
import { decide } from '../../src/policy/decide.js';

const headers = (h: Record<string, string>) => ({
  headers: { headers: Object.entries(h).map(([key, v]) => ({ key, value: '', rawValue: Buffer.from(v) })) },
  attributes: {},
  endOfStream: true,
});
const attrs = (a: Record<string, string>) => ({ 'envoy.filters.http.ext_proc': a });
const policy = compilePolicy(
  validateConfig(
    {
      rules: [
        {
          name: 'gh',
          match_hosts: ['api.github.com'],
          headers: [{ name: 'Authorization', type: 'plaintext', value: 'Bearer t' }],
        },
      ],
    },
    't',
  ),
  {
    secrets: new Map(),
    unsealer: undefined,
  },
);
const base = { ':method': 'GET', ':scheme': 'https', ':authority': 'api.github.com', ':path': '/user' };

describe("reading Envoy's request headers", () => {
  it('treats a request without :scheme as ambiguous (no credential)', () => {
    const { ':scheme': _omit, ...rest } = base;
    expect(toPolicyRequest(headers(rest))).toBeUndefined();
  });

  it('inside an intercepted tunnel, missing CONNECT target or SNI attributes fail the agreement check (421)', () => {
    const none = toPolicyRequest(headers(base), {}, true)!;
    expect(decide(policy, none)).toMatchObject({ outcome: 'refuse', status: 421 });
    const sniOnly = toPolicyRequest(
      headers(base),
      attrs({ 'connection.requested_server_name': 'evil.example' }),
      true,
    )!;
    expect(decide(policy, sniOnly)).toMatchObject({ outcome: 'refuse', status: 421 });
    const all = toPolicyRequest(
      headers(base),
      attrs({
        'connection.requested_server_name': 'api.github.com',
        'filter_state["authproxy.connect_authority"]': 'api.github.com:443',
      }),
      true,
    )!;
    expect(decide(policy, all)).toMatchObject({ outcome: 'inject' });
  });

  it('outside a tunnel (plain ext_proc deployments) requests are decided on their headers', () => {
    expect(decide(policy, toPolicyRequest(headers(base))!)).toMatchObject({ outcome: 'inject' });
  });
});
