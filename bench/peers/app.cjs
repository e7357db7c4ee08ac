// The app every peer runs but liveswap: test/fixtures' server (it answers its
// version, in the body and X-Version; /slow?ms=N&tag=T answers after N ms and
// prints `slow request T started`), plus what each tool asks of an app in its
// own docs, written as a careful user of that tool would:
//   pm2    `pm2 reload` sends the old process SIGINT (and SIGKILL if it still
//          runs 1.6 s later, its kill_timeout): close the server, exit once it
//          has closed (PM2's graceful shutdown docs). An instance is online
//          once it listens.
//   naught process.send('online') once listening; on the 'shutdown' message,
//          close the server and exit once it has closed (naught's README).
//   plain  nothing: the hand-rolled primary's worker.disconnect() closes the server.
// liveswap runs test/fixtures/v1.js and v2.js as they are: it asks nothing of the app.
// A release is a folder whose app.js calls this with its version (run.ts writes them).
'use strict';
const serve = require('../../test/fixtures/lib/serve.js');

module.exports = function app(version, contract) {
  const server = serve(version, {
    onListening: () => {
      if (contract === 'naught' && process.send) process.send('online');
    },
  });
  const closeThenExit = () => server.close(() => process.exit(0));
  if (contract === 'pm2') process.on('SIGINT', closeThenExit);
  if (contract === 'naught') process.on('message', (message) => message === 'shutdown' && closeThenExit());
  return server;
};
