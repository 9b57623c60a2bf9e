/** `npm run bench [-- GROUP]`: prints every benchmark table. Figures only; nothing here passes or fails. */
import { runDecisionBench } from './decision.js';
import { runMatchingBench } from './matching.js';
import { runGrpcBench } from './grpc.js';
import { runEnvoyBench } from './envoy.js';
import { runSandboxBench } from './sandboxes.js';
import { runCallbackBench } from './callbacks.js';
import { runFullRequestBench } from './full-request.js';
import { runTransparentBench } from './transparent.js';
import { runGcpBench } from './gcp.js';
import { runAwsBench } from './aws.js';
import { runTransportBench } from './transports.js';
import { runGcBench } from './gc.js';
import { runUpBench } from './up.js';

const GROUPS: Record<string, () => string | Promise<string>> = {
  decision: runDecisionBench,
  matching: runMatchingBench,
  grpc: runGrpcBench,
  transports: runTransportBench,
  callbacks: runCallbackBench,
  'full-request': runFullRequestBench,
  gcp: runGcpBench,
  aws: runAwsBench,
  envoy: runEnvoyBench,
  gc: runGcBench,
  transparent: runTransparentBench,
  sandboxes: runSandboxBench,
  up: runUpBench,
};

const only = process.argv[2];
if (only && !(only in GROUPS)) {
  console.error(`bench: unknown group "${only}"; one of ${Object.keys(GROUPS).join(', ')}`);
  process.exit(2);
}
console.log(`authproxy benchmarks — node ${process.version}, ${new Date().toISOString()}`);
for (const [name, run] of Object.entries(GROUPS)) if (!only || only === name) console.log(await run());
