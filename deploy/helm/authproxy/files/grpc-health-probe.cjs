// grpc.health.v1 probe for authproxy's ext_proc port, run by the kubelet as an exec probe:
//   node grpc-health-probe.cjs TARGET [--cert=FILE --key=FILE] [--service=NAME] [--timeout-ms=MS]
// TARGET is host:port (mutual TLS with the given client certificate) or unix:/path (plaintext Unix socket).
// Exit 0 when the service reports SERVING, 1 otherwise, with one line saying why on stderr.
//
// Why not the kubelet's own `grpc:` probe: it cannot present a client certificate, and authproxy's TCP ext_proc
// port is mutual TLS only (its answers contain credentials). The server certificate is not verified: the probe
// talks to its own pod over loopback, sends nothing secret, and only asks whether the server is serving.
// Uses @grpc/grpc-js from the authproxy image (/app/node_modules) with a hand-encoded HealthCheckRequest, so it
// needs no .proto file.
'use strict';
const { readFileSync } = require('node:fs');
const { createRequire } = require('node:module');

const args = process.argv.slice(2);
const flag = (name) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const target = args.find((a) => !a.startsWith('--'));
const service = flag('service') ?? 'envoy.service.ext_proc.v3.ExternalProcessor';
const timeoutMs = Number(flag('timeout-ms') ?? 3000);
const fail = (why) => {
  process.stderr.write(`grpc health probe: ${why}\n`);
  process.exit(1);
};
if (!target) fail('usage: grpc-health-probe.cjs host:port|unix:/path [--cert=FILE --key=FILE] [--service=NAME]');

let grpc;
for (const base of [process.env.AUTHPROXY_APP_DIR ?? '/app', process.cwd()]) {
  try {
    grpc = createRequire(`${base}/package.json`)('@grpc/grpc-js');
    break;
  } catch {
    /* next */
  }
}
if (!grpc) fail('cannot load @grpc/grpc-js (set AUTHPROXY_APP_DIR to the authproxy install)');

let credentials;
if (target.startsWith('unix:')) {
  credentials = grpc.credentials.createInsecure();
} else {
  const cert = flag('cert');
  const key = flag('key');
  if (!cert || !key) fail(`${target}: a TCP target needs --cert and --key (mutual TLS)`);
  try {
    credentials = grpc.credentials.createSsl(null, readFileSync(key), readFileSync(cert), {
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    });
  } catch (err) {
    fail(`cannot read the client certificate: ${err.message}`);
  }
}

// HealthCheckRequest { string service = 1; }   HealthCheckResponse { ServingStatus status = 1; }  SERVING = 1
const name = Buffer.from(service, 'utf8');
if (name.length > 127) fail('--service: too long');
const request = Buffer.concat([Buffer.from([0x0a, name.length]), name]);
// An IP address is no TLS server name (RFC 6066): name the loopback peer instead (its certificate is not checked).
const client = new grpc.Client(
  target,
  credentials,
  target.startsWith('unix:') ? {} : { 'grpc.ssl_target_name_override': 'localhost' },
);
client.makeUnaryRequest(
  '/grpc.health.v1.Health/Check',
  (b) => b,
  (b) => b,
  request,
  new grpc.Metadata(),
  { deadline: Date.now() + timeoutMs },
  (err, response) => {
    client.close();
    if (err) fail(`${target}: ${err.details || err.message}`);
    const status = response.length >= 2 && response[0] === 0x08 ? response[1] : 0;
    const names = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];
    if (status !== 1) fail(`${target}: ${service} is ${names[status] ?? status}`);
    process.exit(0);
  },
);
