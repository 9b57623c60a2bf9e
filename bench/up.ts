/**
 * `npm run bench -- up`: what the `authproxy up` process itself spends per request. The built CLI
 * (dist/) runs `up` with a loopback upstream standing in for api.github.com; the Go load generator sends
 * HTTPS through its Envoy at a fixed rate (BENCH_RATE, default 200/s, over 8 keep-alive connections: the
 * same rate before and after a change, so that batching under a busier loop doesn't blur the per-request
 * cost) and reads the CPU time of the `up`
 * process (authproxy's decisions, plus anything else `up` does per request) and of Envoy. `up`'s own
 * stdout and stderr are read and dropped here, as a terminal would take them; the table says how many bytes
 * per request and how many writes per second came out of them (Envoy's access log, when `up` relayed it:
 * Envoy flushes it about once a second). BENCH_UP_BIN runs another build's bin/authproxy.js, to compare.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDnsServer } from '../test/helpers/dns-server.js';
import { envoyBinary, freePort } from '../test/helpers/envoy.js';
import { makePki } from '../test/helpers/pki.js';
import { startUpstream } from '../test/helpers/upstream.js';
import { CONFIG } from './envoy.js';
import { buildGo, loadgen, median, staleBuildNote, type LoadResult } from './procs.js';
import { fmt, table } from './stats.js';

const BIN = process.env.BENCH_UP_BIN ?? fileURLToPath(new URL('../bin/authproxy.js', import.meta.url));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const RATE = Number(process.env.BENCH_RATE ?? 200);

export async function runUpBench(): Promise<string> {
  if (!envoyBinary()) return '\n## authproxy up\n\nskipped: no Envoy binary';
  const why = buildGo();
  if (why) return `\n## authproxy up\n\nskipped: ${why}`;
  const dir = mkdtempSync(join(tmpdir(), 'authproxy-bench-up-'));
  const pki = await makePki(dir, 'upstream', ['api.github.com']);
  const upstream = await startUpstream(pki);
  const dns = await startDnsServer(['api.github.com']);
  writeFileSync(join(dir, 'config.yaml'), CONFIG);
  mkdirSync(join(dir, 'secrets'));
  writeFileSync(join(dir, 'secrets/TOKEN'), 'bench-token\n');
  const proxyPort = await freePort();
  const state = join(dir, 'state');
  const args = [
    'up',
    '--config',
    join(dir, 'config.yaml'),
    '--secrets-dir',
    join(dir, 'secrets'),
    '--state-dir',
    state,
    '--proxy-port',
    String(proxyPort),
  ];
  args.push(
    '--dns-resolver',
    `127.0.0.1:${dns.port}`,
    '--upstream-ca',
    pki.caFile,
    '--egress-allow-cidrs',
    '127.0.0.0/8',
    '--log-level',
    'warn',
  );
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let bytes = 0;
  let chunks = 0;
  const take = (d: Buffer) => {
    bytes += d.length;
    chunks++;
    if (out.length < 20_000) out += d.toString();
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  try {
    const end = Date.now() + 30_000;
    while (!out.includes('authproxy up: ready')) {
      if (child.exitCode !== null || Date.now() > end) throw new Error(`up did not start: ${out.slice(-1000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const envoyPid = Number(/Envoy \(pid (\d+)\)/.exec(out)![1]);
    const base = [
      '-mode',
      'https',
      '-url',
      `https://api.github.com:${upstream.port}/user`,
      '-proxy',
      `http://127.0.0.1:${proxyPort}`,
      '-ca',
      join(state, 'ca-bundle.pem'),
    ];
    const runs: LoadResult[] = [];
    const before = bytes;
    const chunksBefore = chunks;
    for (let i = 0; i < ROUNDS; i++)
      runs.push(
        await loadgen(
          [...base, '-pid', `${child.pid},${envoyPid}`, '-rate', String(RATE), '-conns', '8', '-d', `${SECONDS}s`],
          'up open',
        ),
      );
    const requests = runs.reduce((n, r) => n + r.count, 0);
    const cpu = (i: number) => median(runs.map((r) => r.cpu_us_per_op?.[i] ?? Number.NaN));
    const rows = [
      [
        fmt(median(runs.map((r) => r.per_s)), 0),
        fmt(cpu(0), 1),
        fmt(cpu(1), 1),
        fmt((bytes - before) / requests, 1),
        fmt((chunks - chunksBefore) / (ROUNDS * SECONDS), 1),
      ],
    ];
    const title = `## authproxy up (${RATE} requests/s over 8 connections, ${ROUNDS} × ${SECONDS} s; medians)`;
    return (
      table(
        title,
        [
          'req/s',
          'up process CPU µs/req',
          'Envoy CPU µs/req',
          "bytes on up's stdout+stderr per req",
          'writes on them per s',
        ],
        rows,
      ) + staleBuildNote()
    );
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await upstream.close();
    dns.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(await runUpBench());
