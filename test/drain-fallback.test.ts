/**
 * A Node without an internal the HTTP/1.1 drain reads (hidden by the
 * fixture before the app listens): the worker says so once, on stderr,
 * naming it, and its drain falls back to rules that are slower but never
 * reset a socket a client may be using (src/worker/http-internals.ts).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { freePort, get, startLoad } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { startMaster } from './helpers/processes.js';
import { waitFor } from './helpers/wait.js';

const DRAIN_TIMEOUT_MS = 30_000;

for (const [hide, named] of [
  ['connections-list', 'the http.server.connections list of a server'],
  ['active', "that list's active()"],
] as const) {
  test(`without ${named}: one warning per worker, and 0 failed requests through an upgrade`, async (t) => {
    const [port, port2] = [await freePort(), await freePort()];
    const app = fixture('hidden-http-internals.js');
    const master = await startMaster(app, {
      env: { APP_PORT: String(port), APP_PORT2: String(port2), HIDE: hide },
      args: ['--drain-timeout', String(DRAIN_TIMEOUT_MS)],
    });
    t.after(() => master.stop());
    const load = startLoad(port, { keepAlive: 6, close: 2 });
    t.after(() => load.stop());
    const load2 = startLoad(port2, { keepAlive: 2, close: 0 });
    t.after(() => load2.stop());
    // Idle keep-alive sockets (the fallback leaves them to their keepAliveTimeout) and slow requests in flight.
    const idle = Array.from({ length: 2 }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
    t.after(() => idle.forEach((agent) => agent.destroy()));
    for (const agent of idle) await get(port, '/', agent);
    const slow = Promise.all(Array.from({ length: 4 }, (_, i) => get(port, `/slow?ms=3000&tag=s${i}`)));
    await waitFor('load to flow and the slow requests to reach the workers', () =>
      load.peek().length >= 30 && load2.peek().length >= 10 && [0, 1, 2, 3].every((i) => master.stdout().includes(`slow request s${i} started`)),
    );

    const upgrade = await master.client.upgrade({ target: app });
    const returnedAt = Date.now();
    assert.deepEqual((await slow).map((reply) => reply.body), Array(4).fill('g1'));
    await waitFor('requests after the upgrade', () => load.peek().filter((reply) => reply.sentAt > returnedAt).length >= 20);
    const stats = [await load.stop(), await load2.stop()];
    t.diagnostic(`upgrade ${upgrade.durationMs} ms; ${stats.map((s) => `${s.ok} answered ${JSON.stringify(s.bodies)}, ${s.failed} failed`).join('; ')}`);
    for (const { failed, errors } of stats) assert.equal(failed, 0, JSON.stringify(errors));
    assert.equal(upgrade.killedAtDrainTimeout, 0);
    assert.ok(upgrade.durationMs < DRAIN_TIMEOUT_MS / 2, `the upgrade took ${upgrade.durationMs} ms`);
    assert.ok(stats[0]!.replies.filter((reply) => reply.sentAt > returnedAt).every((reply) => reply.body === 'g2'));

    // Each of the four workers (two per generation) warned once, though it
    // listens with two HTTP servers, and named what it lacks.
    const warnings = [...master.stderr().matchAll(/^\[worker (\d+) g\d\] liveswap worker: (.*)$/gm)];
    const ready = new Set([...master.stderr().matchAll(/worker (\d+) \(pid \d+, gen \d\) starting → ready/g)].map((m) => m[1]));
    assert.equal(ready.size, 4);
    assert.deepEqual(warnings.map((m) => m[1]).sort(), [...ready].sort(), master.stderr());
    for (const [, , text] of warnings) {
      assert.ok(text!.startsWith(`Node ${process.version} lacks ${named}, which the HTTP/1.1 drain reads;`), text);
      assert.match(text!, /draining falls back to slower rules: idle keep-alive sockets are left to the server's keepAliveTimeout/);
    }
  });
}
