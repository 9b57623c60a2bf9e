/**
 * Regressions found in review: a PATCH may not point a kept secret at new hosts; is_set with a value and
 * empty opaque values are refused; a callback URL's query never appears in a problem.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdminRig, type AdminRig } from '../helpers/admin.js';

const SECRET = 'canary-hardening-secret-51ac';
const path = (id: string) => `/v1/sandboxes/${id}/proxy-config`;
const rule = (hosts: string[], header: Record<string, unknown>) => ({ rules: [{ name: 'gh', match_hosts: hosts, headers: [{ name: 'Authorization', type: 'opaque', ...header }] }] });

describe('admin API hardening', () => {
  let rig: AdminRig;
  beforeAll(async () => {
    rig = await startAdminRig();
  });
  afterAll(() => rig?.close());

  it('a PATCH that keeps an opaque value may not send it to a new host', async () => {
    expect((await rig.call('PUT', path('sb-h1'), { body: rule(['api.github.com', 'uploads.github.com'], { value: `Bearer ${SECRET}` }) })).status).toBe(201);
    const moved = await rig.call('PATCH', path('sb-h1'), { body: rule(['attacker.example'], { is_set: true }) });
    expect(moved.status).toBe(422);
    expect(moved.json.problems.join('\n')).toContain('rules[0].headers[0].value: no stored value to keep');
    const narrowed = await rig.call('PATCH', path('sb-h1'), { body: rule(['api.github.com'], { is_set: true }) });
    expect(narrowed.status).toBe(200);
    expect(JSON.stringify(narrowed.json)).not.toContain(SECRET);
  });

  it('refuses is_set: true together with a value, and empty opaque values', async () => {
    await rig.call('PUT', path('sb-h2'), { body: rule(['api.github.com'], { value: `Bearer ${SECRET}` }) });
    const both = await rig.call('PATCH', path('sb-h2'), { body: rule(['api.github.com'], { is_set: true, value: '' }) });
    expect(both.status).toBe(422);
    expect(both.json.problems[0]).toContain('is_set: true keeps the stored value');
    const empty = await rig.call('PUT', path('sb-h3'), { body: rule(['api.github.com'], { value: '' }) });
    expect(empty.status).toBe(422);
    expect(empty.json.problems).toContain('rules[0].headers[0].value: must not be empty');
  });

  it('never shows a callback URL query in a problem', async () => {
    const body = { callbacks: [{ match_hosts: ['api.example.com'], url: `https://tokens.example/r?key=${SECRET}`, ttl_seconds: 60, request_headers: [{ name: 'K', type: 'opaque' }] }] };
    const res = await rig.call('PUT', path('sb-h4'), { body });
    expect(res.status).toBe(422);
    expect(res.text).not.toContain(SECRET);
  });
});
