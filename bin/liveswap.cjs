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
  // `npm run build` bundles the client commands into one file. In a checkout,
  // a bundle older than what tsc wrote (a `tsc` without `npm run build`) would
  // run stale code: then the compiled files run. An installed package (no
  // src/) has both from one build, in whatever order unpacking wrote them.
  const built = mtime(bundle);
  if (built >= mtime(compiled) || (built > 0 && !fs.existsSync(path.join(__dirname, '..', 'src')))) {
    // With the compiled code kept from an earlier command (see compile-cache.ts).
    const loaded = require(path.join(dist, 'compile-cache.cjs')).loadBundle(bundle);
    // -s: the master's files (start.js and what it imports) load as they are, next to the bundle.
    const loadStart = () => import(require('node:url').pathToFileURL(path.join(dist, 'start.js')).href);
    const code = await loaded.exports.main(process.argv.slice(2), loadStart);
    loaded.save();
    return code;
  }
  const { main } = await import(require('node:url').pathToFileURL(compiled).href);
  return main(process.argv.slice(2));
}

// A master (-s) has stopped its workers by now; exit even if a handle lingers.
run().then((code) => process.exit(code));
