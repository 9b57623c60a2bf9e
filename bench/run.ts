/** `npm run bench`: prints every benchmark table. Figures only; nothing here passes or fails. */
import { runDecisionBench } from './decision.js';
import { runGrpcBench } from './grpc.js';
import { runEnvoyBench } from './envoy.js';
import { runSandboxBench } from './sandboxes.js';
import { runCallbackBench } from './callbacks.js';

const only = process.argv[2];
console.log(`authproxy benchmarks — node ${process.version}, ${new Date().toISOString()}`);
if (!only || only === 'decision') console.log(runDecisionBench());
if (!only || only === 'grpc') console.log(await runGrpcBench());
if (!only || only === 'callbacks') console.log(await runCallbackBench());
if (!only || only === 'envoy') console.log(await runEnvoyBench());
if (!only || only === 'sandboxes') console.log(await runSandboxBench());
