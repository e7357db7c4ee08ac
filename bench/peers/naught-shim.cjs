// Runs naught 1.6.0 (2016) on Node 20: `node naught-shim.cjs <naught arguments>`.
//
// Two things in naught's daemon (lib/daemon.js) broke since, and with either
// one `naught start` leaves no server running (the daemon dies, unheard):
//   1. fs.writeFile(pidFile, process.pid, cb): Node 20 no longer turns a number
//      into a string and throws ERR_INVALID_ARG_TYPE. Numbers are written as strings.
//   2. processSend() wraps process.send() in try/catch, but `naught start`
//      disconnects from the daemon once it is up, and Node 20 reports a send
//      on a closed IPC channel as an 'error' event emitted on the next tick,
//      which the try/catch never sees and nothing listens for: the daemon dies
//      at its first event after that. Sends on a closed channel are dropped,
//      as naught meant.
// The daemon is a process of its own (lib/start_daemon.js, spawned with this
// process's environment): NODE_OPTIONS makes it load this file first. Naught's
// master and the app's workers are left as naught starts them.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const SAVED = 'NAUGHT_SHIM_NODE_OPTIONS';

function patch() {
  const writeFile = fs.writeFile;
  fs.writeFile = function (file, data, ...rest) {
    return writeFile.call(this, file, typeof data === 'number' ? String(data) : data, ...rest);
  };
  if (process.send) {
    const send = process.send;
    process.send = function (...args) {
      return process.connected ? send.apply(this, args) : false;
    };
  }
}

if (require.main === module) {
  // naught's CLI (lib/main.js reads its command from process.argv[2], as it is here).
  process.env[SAVED] = process.env.NODE_OPTIONS || '';
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS || ''} --require ${JSON.stringify(__filename)}`.trim();
  patch(); // `--daemon-mode false` runs the daemon in this process
  require('naught/lib/main.js');
} else if (path.basename(process.argv[1] || '') === 'start_daemon.js') {
  patch();
  // Its children (naught's master, then the workers) get the environment they would have had.
  if (process.env[SAVED]) process.env.NODE_OPTIONS = process.env[SAVED];
  else delete process.env.NODE_OPTIONS;
  delete process.env[SAVED];
}
