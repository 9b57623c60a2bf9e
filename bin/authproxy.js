#!/usr/bin/env node
// Entry point of the `authproxy` command; the TypeScript is compiled to dist/ by `npm run build` (run by `prepare`).
import { main } from '../dist/cli/main.js';

await main(process.argv);
