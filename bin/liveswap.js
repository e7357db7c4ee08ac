#!/usr/bin/env node
// The liveswap CLI. The code lives in src/cli (compiled to dist/): `npm run build` first.
import fs from 'node:fs';
import { enableCompileCache } from '../dist/src/cli/compile-cache.js';

// Before the CLI loads: what it compiles goes into Node's compile cache (Node >= 22.1; see there).
enableCompileCache();

// `npm run build` bundles the client commands into one file (main.bundle.js),
// which loads in about half the time of the files tsc writes. A bundle older
// than those files (a `tsc` without `npm run build`) would run stale code:
// then the compiled files run.
const compiled = new URL('../dist/src/cli/main.js', import.meta.url);
const bundle = new URL('../dist/src/cli/main.bundle.js', import.meta.url);
const fresh = (fs.statSync(bundle, { throwIfNoEntry: false })?.mtimeMs ?? 0) >= fs.statSync(compiled).mtimeMs;
const { main } = await import(fresh ? bundle.href : compiled.href);

const code = await main(process.argv.slice(2));
// A master (-s) has stopped its workers by now; exit even if a handle lingers.
process.exit(code);
