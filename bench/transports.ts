/**
 * `npm run bench -- transports` (issue 11): the ext_proc transport alone, with no authproxy work. Null
 * ext_proc servers with one behaviour (bench/baselines: a request_headers message gets one header
 * mutation and OK, a connect-phase stream the intercept answer) on five transports: @grpc/grpc-js out of
 * the box (null-grpcjs.ts --defaults), with authproxy's options (channelz off: null-grpcjs.ts) and tuned
 * further (null-grpcjs.ts --tuned),
 * @connectrpc/connect-node (null-connect.ts), a lean gRPC server on node:http2 for the one method
 * (null-h2.ts) and grpc-go (null-go). First a conformance pass: each server gets the same hand-made
 * HTTP/2 streams (inject, connect phase, two messages in one DATA frame, a message split over DATA frames,
 * no half-close, a reset stream) and must answer with the same bytes and status as null grpc-js. Then the
 * Go load generator, as in bench/grpc.ts: rounds interleaved with a rotated order, closed loop at 1 and 32
 * in flight, open loop at 500/s; medians; CPU is the server's utime+stime per stream.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  BIN_DIR,
  buildGo,
  loadgen,
  startNodeBaseline,
  startNullGo,
  startNullGrpcJs,
  summarize,
  type LoadResult,
  type Server,
} from './procs.js';
import { fmt, ratio, table } from './stats.js';
import { ProcessingRequest } from '../src/gen/envoy/service/ext_proc/v3/external_processor.js';

const BENCH = fileURLToPath(new URL('.', import.meta.url));
const REPO = join(BENCH, '..');
const DESCRIPTORS = join(BIN_DIR, 'extproc.binpb');

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const IN_FLIGHT = [1, 32];
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const OPEN = { rate: Number(process.env.BENCH_RATE ?? 500), slices: Number(process.env.BENCH_SLICES ?? 5), seconds: 3 };

/** The FileDescriptorSet null-connect.ts loads, built by the repo's pinned buf from the same protos as src/gen. */
function buildDescriptors(): string | undefined {
  const r = spawnSync(
    join(REPO, 'node_modules/.bin/buf'),
    [
      'build',
      '--config',
      'proto/buf.yaml',
      '--path',
      'node_modules/@grpc/grpc-js-xds/deps/envoy-api/envoy/service/ext_proc/v3/external_processor.proto',
      '-o',
      DESCRIPTORS,
    ],
    { cwd: REPO, encoding: 'utf8' },
  );
  return r.status === 0 ? undefined : `buf build failed: ${r.stderr?.slice(-500) ?? r.error}`;
}

// ---- conformance: the same streams to every server, answers compared byte for byte ----

const enc = (m: ProcessingRequest) => Buffer.from(ProcessingRequest.encode(m).finish());
const grpcFrame = (body: Buffer) =>
  Buffer.concat([
    Buffer.from([0, body.length >>> 24, (body.length >>> 16) & 255, (body.length >>> 8) & 255, body.length & 255]),
    body,
  ]);
const header = (key: string, value: string) => ({ key, value: '', rawValue: Buffer.from(value) });
const REQUEST_HEADERS = grpcFrame(
  enc({
    request: {
      $case: 'requestHeaders',
      value: {
        headers: {
          headers: [
            header(':authority', 'api.github.com:443'),
            header(':path', '/user'),
            header(':method', 'GET'),
            header('user-agent', 'OpenAI/Python 1.82.0'),
          ],
        },
        attributes: {},
        endOfStream: true,
      },
    },
    metadataContext: undefined,
    attributes: {},
    observabilityMode: false,
    protocolConfig: undefined,
  } as ProcessingRequest),
);
const RESPONSE_HEADERS = grpcFrame(
  enc({
    request: {
      $case: 'responseHeaders',
      value: { headers: { headers: [header(':status', '200')] }, attributes: {}, endOfStream: false },
    },
    metadataContext: undefined,
    attributes: {},
    observabilityMode: false,
    protocolConfig: undefined,
  } as ProcessingRequest),
);

interface Answer {
  status: string;
  data: string;
}
type Scenario = (session: http2.ClientHttp2Session) => Promise<Answer>;

/** One stream: `send` writes to it; resolves with the grpc-status and all DATA bytes (hex) at the trailers (or the close). */
function call(
  session: http2.ClientHttp2Session,
  phase: string | undefined,
  send: (s: http2.ClientHttp2Stream) => void | Promise<void>,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const s = session.request({
      ':method': 'POST',
      ':path': '/envoy.service.ext_proc.v3.ExternalProcessor/Process',
      'content-type': 'application/grpc',
      te: 'trailers',
      ...(phase ? { 'x-authproxy-phase': phase } : {}),
    });
    const chunks: Buffer[] = [];
    let status = '';
    s.on('response', (h) => h['grpc-status'] !== undefined && (status = String(h['grpc-status'])));
    const timer = setTimeout(() => {
      s.close(http2.constants.NGHTTP2_CANCEL);
      reject(new Error('no answer in 3 s'));
    }, 3000);
    const done = () => {
      clearTimeout(timer);
      if (!s.writableEnded && !s.destroyed) s.end(); // the no-half-close case: end our side once answered
      resolve({ status: status || `rst ${s.rstCode}`, data: Buffer.concat(chunks).toString('hex') });
    };
    // Done at the trailers: a server need not close a stream the client keeps open (grpc-js does not).
    s.on('trailers', (h) => {
      status = String(h['grpc-status']);
      done();
    });
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('close', done);
    s.on('error', () => {});
    void send(s);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SCENARIOS: Record<string, Scenario> = {
  inject: (c) => call(c, 'inject', (s) => void s.end(REQUEST_HEADERS)),
  'connect phase': (c) => call(c, 'connect', (s) => void s.end(REQUEST_HEADERS)),
  'no phase': (c) => call(c, undefined, (s) => void s.end(REQUEST_HEADERS)),
  'two messages, one DATA frame': (c) =>
    call(c, 'inject', (s) => void s.end(Buffer.concat([RESPONSE_HEADERS, REQUEST_HEADERS]))),
  'message split over DATA frames': (c) =>
    call(c, 'inject', async (s) => {
      for (const cut of [
        [0, 3],
        [3, 40],
        [40, REQUEST_HEADERS.length],
      ] as const) {
        s.write(REQUEST_HEADERS.subarray(...cut));
        await sleep(20);
      }
      s.end();
    }),
  'no half-close': (c) => call(c, 'inject', (s) => void s.write(REQUEST_HEADERS)),
  'half-close, no message': (c) => call(c, 'inject', (s) => void s.end()),
  'reset mid-message, then a new stream': async (c) => {
    const reset = await call(c, 'inject', async (s) => {
      s.write(REQUEST_HEADERS.subarray(0, 10));
      await sleep(20);
      s.close(http2.constants.NGHTTP2_CANCEL);
    });
    const next = await call(c, 'inject', (s) => void s.end(REQUEST_HEADERS));
    return { status: `${reset.status} / ${next.status}`, data: next.data };
  },
};

async function conformance(servers: Server[]): Promise<string> {
  const answers = new Map<string, Map<string, Answer>>();
  for (const server of servers) {
    const session = http2.connect('http://localhost', {
      createConnection: () => net.connect(server.address.slice('unix:'.length)),
    });
    session.on('error', () => {});
    const mine = new Map<string, Answer>();
    for (const [name, run] of Object.entries(SCENARIOS))
      mine.set(name, await run(session).catch((e: Error) => ({ status: `error: ${e.message}`, data: '' })));
    session.close();
    answers.set(server.name, mine);
  }
  const ref = answers.get('null grpc-js')!;
  const rows = Object.keys(SCENARIOS).map((name) => [
    name,
    ...servers.map((s) => {
      const a = answers.get(s.name)!.get(name)!;
      const r = ref.get(name)!;
      if (a.status === r.status && a.data === r.data) return 'same';
      return `${a.status === r.status ? 'same status' : `status ${a.status}`}, ${a.data === r.data ? 'same bytes' : `${a.data.length / 2} B, bytes differ`}`;
    }),
    `status ${ref.get(name)!.status}, ${ref.get(name)!.data.length / 2} B`,
  ]);
  return (
    table(
      'Conformance: each server vs null grpc-js on hand-made HTTP/2 streams (grpc-status and response DATA bytes)',
      ['stream', ...servers.map((s) => s.name), 'null grpc-js'],
      rows,
    ) +
    "\n(grpc-go writes the dynamic-metadata Struct's map entries in its own, random order: same length, other bytes; the Node servers share one encoding order.)"
  );
}

// ---- load ----

export async function runTransportBench(): Promise<string> {
  const why = buildGo() ?? buildDescriptors();
  if (why) return `\ntransport benchmark skipped: ${why}`;
  const dir = mkdtempSync(join(tmpdir(), 'authproxy-transports-'));
  const servers: Server[] = [];
  try {
    servers.push(
      await startNodeBaseline('null grpc-js defaults', join(dir, 'grpcjs-defaults.sock'), 'null-grpcjs.ts', [
        '--defaults',
      ]),
    );
    servers.push(await startNullGrpcJs(join(dir, 'grpcjs.sock')));
    servers.push(
      await startNodeBaseline('null grpc-js tuned', join(dir, 'grpcjs-tuned.sock'), 'null-grpcjs.ts', ['--tuned']),
    );
    servers.push(
      await startNodeBaseline('null connect-node', join(dir, 'connect.sock'), 'null-connect.ts', [DESCRIPTORS]),
    );
    servers.push(await startNodeBaseline('null lean h2', join(dir, 'h2.sock'), 'null-h2.ts'));
    servers.push(await startNullGo(join(dir, 'go.sock')));
    const checks = await conformance(servers);

    const runs = new Map<string, LoadResult[]>();
    const record = (key: string, r: LoadResult) => runs.set(key, [...(runs.get(key) ?? []), r]);
    for (let round = 0; round < Math.max(ROUNDS, OPEN.slices); round++) {
      for (let k = 0; k < servers.length; k++) {
        const s = servers[(round + k) % servers.length]!;
        const base = ['-target', s.address, '-pid', String(s.pid)];
        if (round < ROUNDS)
          for (const c of IN_FLIGHT)
            record(`${s.name}/${c}`, await loadgen([...base, '-c', String(c), '-d', `${SECONDS}s`], `${s.name} ${c}`));
        if (round < OPEN.slices)
          record(
            `${s.name}/open`,
            await loadgen(
              [...base, '-rate', String(OPEN.rate), '-d', `${OPEN.seconds}s`, '-warmup', '0.3s'],
              `${s.name} open`,
            ),
          );
      }
    }
    const rows: Array<Array<string | number>> = [];
    for (const load of [...IN_FLIGHT.map(String), 'open']) {
      const closed = load !== 'open';
      const ref = summarize(runs.get(`null grpc-js/${load}`)!);
      for (const s of servers) {
        const m = summarize(runs.get(`${s.name}/${load}`)!);
        rows.push([
          s.name,
          closed ? `${load} in flight` : `${OPEN.rate}/s open`,
          fmt(m.perS),
          fmt(m.p50),
          fmt(m.p99),
          fmt(m.p999),
          fmt(m.cpu),
          m.errors,
          closed ? ratio(m.perS, ref.perS) : '',
          ratio(m.p50, ref.p50),
          ratio(m.p99, ref.p99),
          ratio(m.cpu, ref.cpu),
        ]);
      }
    }
    return (
      checks +
      '\n' +
      table(
        `ext_proc transports, null servers, Go load generator over one HTTP/2 connection on a Unix socket (closed loop: median of ${ROUNDS} interleaved rounds × ${SECONDS} s; open loop: median of ${OPEN.slices} slices × ${OPEN.seconds} s, latency from the scheduled send; loader and server share the cores)`,
        [
          'target',
          'load',
          'streams/s',
          'p50 µs',
          'p99 µs',
          'p99.9 µs',
          'CPU µs/stream',
          'errors',
          'streams/s vs grpc-js',
          'p50 vs grpc-js',
          'p99 vs grpc-js',
          'CPU vs grpc-js',
        ],
        rows,
      )
    );
  } finally {
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
