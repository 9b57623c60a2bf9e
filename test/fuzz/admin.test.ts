/**
 * A fuzzer for the admin API (the real fastify server over a real redis-server, test/helpers/admin.ts):
 * random methods, paths, headers and bodies (JSON configs and mutations of them, random JSON, random
 * text, invalid UTF-8, prototype-poisoning keys, deep nesting); huge bodies; bodies that trickle; raw
 * HTTP/1.1 junk on the socket. The API must never answer 500, never put a stack trace or a planted secret
 * in a body, answer 413 to a body over the limit, end a trickling body with its request timeout, and keep
 * serving.
 */
import { connect, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, SCOPED_TOKEN, startAdminRig, type AdminRig } from '../helpers/admin.js';
import { fuzz, fuzzTimeout, hostileString, hostileValue, report, runs, wellFormed } from '../helpers/fuzz.js';

const CANARY = 'cnry-admin-7Q3x-8080';
const BODY_LIMIT = 64 * 1024;
const REQUEST_TIMEOUT_MS = 500;

/** What never appears in an answer: a stack frame, a source path, an error class name, a planted value. */
const STACK = /\n\s+at |\bat [^\s]+ \(|node_modules|\.ts:\d+|\.js:\d+|\bTypeError\b|\bReferenceError\b|\bSyntaxError\b/;

let rig: AdminRig;
let host: string;
let port: number;

function expectSafeAnswer(status: number, text: string, what: string): void {
  expect(status, `${what} -> ${status} ${text.slice(0, 200)}`).toBeLessThan(500);
  expect(text).not.toMatch(STACK);
  expect(text).not.toContain(CANARY);
  if (text !== '') expect(() => JSON.parse(text), `JSON body: ${text.slice(0, 100)}`).not.toThrow();
}

/** A valid config whose opaque value (sent in plaintext, sealed by the API) is the canary. */
const validConfig = (hosts = ['api.example.com']) => ({
  rules: [
    {
      name: 'r',
      match_hosts: hosts,
      headers: [
        { name: 'Authorization', type: 'opaque', value: `Bearer ${CANARY}` },
        { name: 'X-Plain', type: 'plaintext', value: 'p' },
      ],
    },
  ],
  callbacks: [
    {
      match_hosts: ['cb.example.com'],
      url: 'https://cb.example.com/resolve',
      ttl_seconds: 60,
      request_headers: [{ name: 'X-Key', type: 'opaque', value: CANARY }],
    },
  ],
});

/** A body: valid configs with damage, random JSON, or text that is not JSON at all. */
const body = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ text: JSON.stringify(validConfig()), type: 'application/json' }) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.nat(),
        hostileValue,
        fc.constantFrom(
          'rules',
          'callbacks',
          'access_control',
          'no_proxy',
          'description',
          'tenant_id',
          'organization_id',
          '__proto__',
          'constructor',
          'is_set',
        ),
      )
      .map(([how, v, key]) => {
        const c: Record<string, unknown> = validConfig();
        const rule = (c.rules as Array<Record<string, unknown>>)[0]!;
        const header = (rule.headers as Array<Record<string, unknown>>)[0]!;
        switch (how % 8) {
          case 0:
            c[key] = v;
            break;
          case 1:
            header.value = v;
            break;
          case 2:
            header.is_set = v;
            delete header.value;
            break;
          case 3:
            rule.match_hosts = v;
            break;
          case 4:
            header[`${CANARY}`] = 1;
            delete header.value;
            break; // a mis-indented value
          case 5:
            header.value = `${CANARY}\r\nX: y`;
            break;
          case 6:
            header.value = CANARY.repeat(500);
            break;
          default:
            rule.name = v;
        }
        return { text: JSON.stringify(c), type: 'application/json' };
      }),
  },
  { weight: 2, arbitrary: hostileValue.map((v) => ({ text: JSON.stringify(v) ?? 'null', type: 'application/json' })) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(
        '{"__proto__": {"polluted": true}, "rules": []}',
        '{"constructor": {"prototype": {"x": 1}}}',
        `${'['.repeat(5000)}${']'.repeat(5000)}`,
        `{"a": ${'1'.repeat(400)}}`,
        '{"rules": [',
        '',
        ' ',
        'null',
        '"x"',
        '\u0000',
        '{"rules": []}{"rules": []}',
      )
      .map((text) => ({ text, type: 'application/json' })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        hostileString,
        fc.constantFrom(
          'application/json',
          'text/plain',
          'application/x-www-form-urlencoded',
          'application/json; charset=latin1',
          'APPLICATION/JSON',
          'application/jsonx',
          '',
        ),
      )
      .map(([text, type]) => ({ text, type })),
  },
  {
    weight: 1,
    arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => ({ bytes: Buffer.from(b), type: 'application/json' })),
  },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

const sandboxId = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('sb-1', 'sb-2', 'team-a', 'sb-solo') },
  fc.constantFrom(
    'sb-1',
    'team-a',
    'sb-solo',
    'x'.repeat(129),
    '..',
    '.',
    '%2e%2e',
    '%00',
    'a%2Fb',
    '-a',
    'sb 1',
    'é',
    '*',
  ),
  hostileString.filter((x) => wellFormed(x) === x).map(encodeURIComponent),
);
const path = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        sandboxId,
        fc.constantFrom(
          'proxy-config',
          'proxy-config',
          'env',
          'proxy-config/',
          'proxy-config?x=1',
          'proxy-config#f',
          'x',
        ),
      )
      .map(([id, leaf]) => `/v1/sandboxes/${id}/${leaf}`),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '/healthz',
      '/v1/openapi.json',
      '/',
      '//',
      '/v1',
      '/v1/sandboxes',
      '/v1/sandboxes/',
      '/v1/sandboxes//proxy-config',
      '/../../etc/passwd',
      '/v1/sandboxes/sb-1/proxy-config/../env',
      '/%',
      '/%zz',
      `/${'a'.repeat(5000)}`,
      '/v1/sandboxes/sb-1/proxy-config;x',
    ),
  },
  { weight: 1, arbitrary: hostileString.filter((x) => wellFormed(x) === x).map((x) => `/${encodeURIComponent(x)}`) },
);
const token = fc.oneof(
  { weight: 6, arbitrary: fc.constant(ADMIN_TOKEN) },
  { weight: 1, arbitrary: fc.constant(SCOPED_TOKEN) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', CANARY, `${ADMIN_TOKEN} `, ADMIN_TOKEN.toUpperCase(), `${ADMIN_TOKEN}\u0000`),
  },
  { weight: 1, arbitrary: hostileString.filter((s) => /^[\x20-\x7e]*$/.test(s)) },
);
const headers = fc.record(
  {
    'if-match': fc.constantFrom('*', '"x"', 'W/"x"', '""', '"', CANARY),
    'if-none-match': fc.constantFrom('*', '"x"', 'x'),
    accept: fc.constantFrom('application/json', 'text/html', '*/*', ''),
    'x-forwarded-for': fc.constant('127.0.0.1'),
    'content-encoding': fc.constantFrom('gzip', 'br', 'identity'),
  },
  { requiredKeys: [] },
);
const method = fc.constantFrom('GET', 'PUT', 'PATCH', 'DELETE', 'POST', 'HEAD', 'OPTIONS', 'PUT', 'PATCH');

/** One raw HTTP/1.1 exchange: writes `request` (in pieces, `gapMs` apart), resolves with what came back when the socket closes. */
function rawHttp(
  request: readonly (string | Buffer)[],
  opts: { gapMs?: number; waitMs?: number; untilResponse?: boolean } = {},
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, host);
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    let writer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      clearInterval(writer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      // A keep-alive connection stays open after its answer: with untilResponse, the first answer's head is enough.
      if (opts.untilResponse && Buffer.concat(chunks).includes('\r\n\r\n')) finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => {
      /* reported as closed */
    });
    timer = setTimeout(() => finish(false), opts.waitMs ?? 10_000);
    socket.on('connect', () => {
      if (!opts.gapMs) {
        for (const part of request) socket.write(part);
        return;
      }
      let i = 0;
      writer = setInterval(() => {
        if (i < request.length && !socket.destroyed) socket.write(request[i++]!);
      }, opts.gapMs);
    });
  });
}

/** The status code of the first response in raw bytes, if any. */
const firstStatus = (text: string) => Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? NaN);

describe('admin API fuzzer (real fastify + redis-server)', () => {
  beforeAll(async () => {
    rig = await startAdminRig({
      bodyLimitBytes: BODY_LIMIT,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      secrets: { TOKEN: CANARY },
      callbackAllow: ['cb.example.com'],
    });
    const url = new URL(rig.url);
    host = url.hostname;
    port = Number(url.port);
  });

  afterAll(async () => {
    await rig?.close();
  });

  it(
    'random methods, paths, headers and bodies: never 500, never a stack trace or a planted value in a body',
    async () => {
      const statuses = new Map<number, number>();
      // Stored configs for the fuzz to read, patch and delete.
      for (const id of ['sb-1', 'sb-2', 'team-a'])
        expect((await rig.call('PUT', `/v1/sandboxes/${id}/proxy-config`, { body: validConfig() })).status).toBe(201);
      await fuzz(
        'admin: random requests',
        200,
        fc.asyncProperty(method, path, token, headers, body, async (m, p, t, h, b) => {
          const init: RequestInit & { headers: Record<string, string> } = { method: m, headers: { ...h } };
          if (t !== '') init.headers.authorization = `Bearer ${t}`;
          if (b && m !== 'GET' && m !== 'HEAD') {
            init.body = 'bytes' in b ? b.bytes : b.text;
            if (b.type) init.headers['content-type'] = b.type;
          }
          let res: Response;
          try {
            res = await fetch(`${rig.url}${p}`, init);
          } catch (err) {
            // fetch itself refuses some inputs (a malformed URL); the server was never reached.
            expect(String(err)).toMatch(/TypeError|Invalid|fetch failed/);
            return;
          }
          const text = await res.text();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          expectSafeAnswer(res.status, text, `${m} ${p}`);
        }),
      );
      // The fuzz reached the handlers, not only the authentication in front of them.
      expect([...statuses.keys()].some((s) => s === 200 || s === 201)).toBe(true);
      expect([400, 415, 422].some((s) => statuses.has(s))).toBe(true);
      const health = await rig.call('GET', '/healthz', { token: null });
      expect(health.status).toBe(200);
    },
    fuzzTimeout(10_000),
  );

  it('stored configs never give a planted opaque value back', async () => {
    const put = await rig.call('PUT', '/v1/sandboxes/sb-canary/proxy-config', { body: validConfig() });
    expect(put.status).toBe(201);
    for (const p of ['/v1/sandboxes/sb-canary/proxy-config', '/v1/sandboxes/sb-canary/env']) {
      const r = await rig.call('GET', p);
      expect(r.status).toBe(200);
      expect(r.text).not.toContain(CANARY);
    }
    expect(await rig.rawStored('sb-canary')).not.toContain(CANARY);
  });

  it('huge bodies: 413 with a JSON error, with a Content-Length or chunked, and the API keeps serving', async () => {
    const big = JSON.stringify({ description: 'x'.repeat(BODY_LIMIT * 4) });
    const cases = [
      { name: 'content-length', init: { body: big } },
      { name: 'chunked', init: { body: new Blob([big]).stream(), duplex: 'half' } },
      { name: 'just over the limit', init: { body: JSON.stringify({ description: 'y'.repeat(BODY_LIMIT) }) } },
    ];
    for (const c of cases) {
      const res = await fetch(`${rig.url}/v1/sandboxes/sb-big/proxy-config`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        ...c.init,
      } as RequestInit);
      const text = await res.text();
      expect(res.status, c.name).toBe(413);
      expectSafeAnswer(res.status, text, c.name);
      expect(JSON.parse(text).error).toMatch(/larger than/);
    }
    // A body that lies about its length (more bytes than announced, then fewer).
    const longer = await rawHttp(
      [
        `PUT /v1/sandboxes/sb-big/proxy-config HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${BODY_LIMIT * 2}\r\n\r\n`,
        '{"rules": []}',
      ],
      { waitMs: 10_000 },
    );
    expect(firstStatus(longer.text) || 408).toBeLessThan(500);
    expect((await rig.call('GET', '/healthz', { token: null })).status).toBe(200);
    report('admin: huge bodies', cases.length + 1);
  }, 30_000);

  it('trickling bodies and headers are ended by the request timeout (408 or closed), and other requests are served meanwhile', async () => {
    const n = runs(6);
    const auth = `Authorization: Bearer ${ADMIN_TOKEN}\r\n`;
    const trickles = Array.from({ length: n }, (_, i) => {
      const head = `PUT /v1/sandboxes/sb-slow-${i}/proxy-config HTTP/1.1\r\nHost: x\r\n${i % 3 === 2 ? '' : auth}Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n`;
      // i % 3: 0 = authorised body trickle, 1 = headers trickle, 2 = unauthorised body trickle
      const parts =
        i % 3 === 1 ? [...head.slice(0, -2)].map((c) => c) : [head, ...Array.from({ length: 5000 }, () => ' ')];
      return rawHttp(parts, { gapMs: 100, waitMs: 30_000 });
    });
    // Meanwhile the API answers at once.
    for (let i = 0; i < 5; i++) expect((await rig.call('GET', '/healthz', { token: null })).status).toBe(200);
    const outcomes = await Promise.all(trickles);
    outcomes.forEach((o, i) => {
      // Ended by the server (the 30 s wait is only a backstop): a 408, or an early 401 then a close.
      expect(o.closed, `trickle ${i}`).toBe(true);
      const status = firstStatus(o.text);
      if (!Number.isNaN(status)) expect([401, 408]).toContain(status);
      expect(o.text).not.toMatch(STACK);
    });
    report('admin: trickling requests', n);
  }, 60_000);

  it(
    'raw HTTP/1.1 junk on the socket: answered with a 4xx or closed, never a 500; the API keeps serving',
    async () => {
      const line = fc.oneof(
        fc.constantFrom(
          'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
          'BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
          'GET http://evil.test/healthz HTTP/1.1\r\nHost: x\r\n\r\n',
          'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n',
          'GET /healthz\r\n\r\n',
          `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`,
          'PUT /v1/sandboxes/sb-1/proxy-config HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
          `PUT /v1/sandboxes/sb-1/proxy-config HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
          `PUT /v1/sandboxes/sb-1/proxy-config HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}`,
          `PATCH /v1/sandboxes/sb-1/proxy-config HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nAuthorization: Bearer ${SCOPED_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
          'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n',
          'GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\u0000b\r\n\r\n',
          'GET /\u00ff HTTP/1.1\r\nHost: x\r\n\r\n',
          '\r\n\r\n\r\n',
        ),
        fc.uint8Array({ minLength: 1, maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
        fc
          .tuple(method, path, hostileString)
          .map(
            ([m, p, h]) =>
              `${m} ${p} HTTP/1.1\r\nHost: x\r\nX-Fuzz: ${h.replace(/[\r\n]/g, '')}\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Length: 0\r\n\r\n`,
          ),
      );
      await fuzz(
        'admin: raw HTTP/1.1 junk',
        60,
        fc.asyncProperty(line, async (request) => {
          const { text, closed } = await rawHttp([Buffer.from(request, 'latin1')], {
            waitMs: REQUEST_TIMEOUT_MS * 4,
            untilResponse: true,
          });
          const status = firstStatus(text);
          // Answered, or closed (by the request timeout at the latest).
          expect(closed || !Number.isNaN(status), request.slice(0, 80)).toBe(true);
          if (!Number.isNaN(status)) expect(status, request.slice(0, 80)).toBeLessThan(500);
          expect(text).not.toMatch(STACK);
        }),
      );
      expect((await rig.call('GET', '/healthz', { token: null })).status).toBe(200);
    },
    fuzzTimeout(10_000),
  );

  it('never logged a planted value or a stack trace', () => {
    expect(rig.logs.text()).not.toContain(CANARY);
    expect(rig.logs.text()).not.toMatch(/\n\s+at /);
  });
});
