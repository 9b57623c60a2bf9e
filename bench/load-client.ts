/**
 * The load generator of the transparent-mode benchmark, run as a child inside the sandbox's network
 * namespace (its connections must be the sandbox's own to be captured). Argument: JSON
 * `{url, proxy?, total, inFlight, ca}`; prints `{rps, p50, p99}` (ms) as JSON. Keep-alive connections,
 * `inFlight` at a time, after 200 warm-up requests.
 */
import { readFileSync } from 'node:fs';
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';
import { loadTest } from './stats.js';

const { url, proxy, total, inFlight, ca } = JSON.parse(process.argv[2]!) as {
  url: string;
  proxy?: string;
  total: number;
  inFlight: number;
  ca: string;
};
const tls = { ca: readFileSync(ca, 'utf8') };
const dispatcher: Dispatcher = proxy
  ? new ProxyAgent({ uri: proxy, requestTls: tls, connections: inFlight })
  : new Agent({ connect: tls, connections: inFlight });
const one = async () => {
  const res = await request(url, { dispatcher });
  const body = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}: ${body.slice(0, 200)}`);
};
const result = await loadTest(one, total, inFlight);
await dispatcher.close();
process.stdout.write(JSON.stringify(result));
