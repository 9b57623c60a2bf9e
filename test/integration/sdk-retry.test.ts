/**
 * SDK retries against a scripted local server: 429/503 answers with Retry-After (seconds and HTTP date),
 * bounded attempts, no retry for 4xx or an over-long Retry-After, network errors retried only for
 * idempotent methods. Attempts are counted and the asked-for delays recorded; nothing is timed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AuthProxyApiError, AuthProxyClient, retryAfterMs } from '../../src/sdk/index.js';
import { startScriptedServer, type ScriptedServer, type Step } from '../helpers/admin-fake.js';

const TOKEN = 'sdk-retry-token-0123456789';
const OK: Step = {
  status: 200,
  body: {
    sandbox_id: 'sb',
    version: 1,
    updated_at: '2025-01-01T00:00:00.000Z',
    proxy_config: { rules: [], callbacks: [], no_proxy: [] },
  },
};

describe('SDK retries', () => {
  let server: ScriptedServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const clientFor = async (script: Step[], retries?: number) => {
    server = await startScriptedServer(script);
    const delays: number[] = [];
    const client = new AuthProxyClient({
      baseUrl: server.url,
      token: TOKEN,
      retries,
      sleep: async (ms) => void delays.push(ms),
    });
    return { client, delays, requests: server.requests };
  };

  it('honours Retry-After in seconds (429) and as an HTTP date (503), then succeeds', async () => {
    const date = new Date(Date.now() + 10_000).toUTCString();
    const { client, delays, requests } = await clientFor([
      { status: 429, headers: { 'retry-after': '1' } },
      { status: 503, headers: { 'retry-after': date } },
      OK,
    ]);
    const res = await client.get('sb');
    expect(res.version).toBe(1);
    expect(requests).toHaveLength(3);
    expect(delays[0]).toBe(1000);
    expect(delays[1]).toBeGreaterThan(8000);
    expect(delays[1]).toBeLessThanOrEqual(10_000);
    expect(
      requests.every((r) => r.authorization === `Bearer ${TOKEN}` && r.url === '/v1/sandboxes/sb/proxy-config'),
    ).toBe(true);
  });

  it('retries PATCH on 5xx too (the server answered: the request was refused, not half-applied)', async () => {
    const { client, requests } = await clientFor([{ status: 502 }, OK]);
    await client.patch('sb', { rules: [] });
    expect(requests.map((r) => r.method)).toEqual(['PATCH', 'PATCH']);
    expect(JSON.parse(requests[1]!.body)).toEqual({ rules: [] });
  });

  it('gives up after the configured retries with the last error', async () => {
    const { client, delays, requests } = await clientFor(
      [{ status: 503, body: { error: 'sandbox store unavailable' } }],
      2,
    );
    const err = await client.get('sb').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthProxyApiError);
    expect(err).toMatchObject({ status: 503, error: 'sandbox store unavailable' });
    expect(requests).toHaveLength(3);
    expect(delays).toHaveLength(2);
    expect(delays.every((d) => d >= 0 && d <= 5000)).toBe(true);
  });

  it('does not retry a 4xx, a 501, or a Retry-After beyond the bound', async () => {
    for (const step of [
      { status: 400 },
      { status: 409 },
      { status: 501 },
      { status: 429, headers: { 'retry-after': '3600' } },
    ] as Step[]) {
      const { client, requests } = await clientFor([step, OK]);
      await expect(client.get('sb')).rejects.toBeInstanceOf(AuthProxyApiError);
      expect(requests, JSON.stringify(step)).toHaveLength(1);
      await server!.close();
      server = undefined;
    }
  });

  it('retries a dropped connection for GET, PUT and DELETE but not for PATCH', async () => {
    for (const method of ['get', 'create', 'delete'] as const) {
      const { client, requests } = await clientFor(['drop', method === 'delete' ? { status: 204 } : OK]);
      if (method === 'create') await client.create('sb', { rules: [] });
      else await client[method]('sb');
      expect(requests, method).toHaveLength(2);
      await server!.close();
      server = undefined;
    }
    const { client, requests } = await clientFor(['drop', OK]);
    const err = await client.patch('sb', { rules: [] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 0 });
    expect((err as Error).message).toMatch(/^0 PATCH \/v1\/sandboxes\/sb\/proxy-config: no response/);
    expect((err as Error).message).not.toContain(TOKEN);
    expect(requests).toHaveLength(1);
  });

  it('waits for real with the default sleep (Retry-After: 0)', async () => {
    server = await startScriptedServer([{ status: 429, headers: { 'retry-after': '0' } }, OK]);
    const client = new AuthProxyClient({ baseUrl: server.url, token: TOKEN });
    expect((await client.get('sb')).version).toBe(1);
    expect(server.requests).toHaveLength(2);
  });

  it('parses Retry-After forms', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(retryAfterMs('120', now)).toBe(120_000);
    expect(retryAfterMs('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMs('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs('-5', now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });
});
