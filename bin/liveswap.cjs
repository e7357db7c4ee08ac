#!/usr/bin/env node
// The liveswap CLI. The code lives in src/cli (compiled to dist/): `npm run build` first.
// CommonJS, as is the bundle it loads: Node runs it without starting its ES
// module loader, a tenth of a client command's time (scripts/bundle-cli.mjs).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist', 'src', 'cli');
const compiled = path.join(dist, 'main.js');
const bundle = path.join(dist, 'main.bundle.cjs');
const mtime = (file) => fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0;

async function run() {
  // `npm run build` bundles the client commands into one file. A bundle older
  // than what tsc wrote (a `tsc` without `npm run build`) would run stale
  // code: then the compiled files run.
  if (mtime(bundle) >= mtime(compiled)) {
    // Before the CLI loads: what it compiles goes into Node's compile cache (Node >= 22.1; see compile-cache.ts).
    require(path.join(dist, 'compile-cache.cjs')).enableCompileCache();
    return require(bundle).main(process.argv.slice(2));
  }
  const { main } = await import(require('node:url').pathToFileURL(compiled).href);
  return main(process.argv.slice(2));
}

// A master (-s) has stopped its workers by now; exit even if a handle lingers.
run().then((code) => process.exit(code));
