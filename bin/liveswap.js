#!/usr/bin/env node
// The liveswap CLI. The code lives in src/cli (compiled to dist/): `npm run build` first.
import { main } from '../dist/src/cli/main.js';

const code = await main(process.argv.slice(2));
// A master (-s) has stopped its workers by now; exit even if a handle lingers.
process.exit(code);
