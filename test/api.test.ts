/**
 * The programmatic API, imported by package name as a user would:
 * liveswap(options) runs a master in this process; connect() is the typed
 * client of any master.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import liveswap, { connect, LiveswapError, type WorkerEvent } from 'liveswap';
import { status } from '@grpc/grpc-js';
import { freePort, get } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { expectGone } from './helpers/wait.js';

test('liveswap(options) runs a master in-process; connect() drives it over gRPC', async () => {
  const appPort = await freePort();
  process.env.APP_PORT = String(appPort);
  const ls = await liveswap({ target: fixture('v1.js'), port: 0, forks: 2, logLevel: 'silent', workerOutput: 'ignore' });
  const seen: number[] = [];
  try {
    assert.match(ls.endpoint!, /^127\.0\.0\.1:\d+$/);
    assert.equal((await get(appPort)).body, 'v1');
    const first = ls.status();
    assert.equal(first.counts.ready, 2);
    seen.push(...first.workers.map((w) => w.pid));

    // events(): an async iterator of transitions.
    const abort = new AbortController();
    const events: WorkerEvent[] = [];
    const collecting = (async () => {
      for await (const event of ls.events({ signal: abort.signal })) events.push(event);
    })();
    const upgraded = await ls.upgrade(fixture('v2.js'));
    abort.abort();
    await collecting;
    assert.equal(upgraded.generation, 2);
    assert.equal((await get(appPort)).body, 'v2');
    // Each worker's own moves, in order (the two new ones may boot at once).
    const movesOf = (generation: number) => {
      const byWorker = new Map<number, string[]>();
      for (const e of events.filter((e) => e.worker.generation === generation)) {
        byWorker.set(e.worker.id, [...(byWorker.get(e.worker.id) ?? []), `${e.from ?? 'new'}>${e.to}`]);
      }
      return [...byWorker.values()];
    };
    assert.deepEqual(movesOf(2), [
      ['new>starting', 'starting>ready'],
      ['new>starting', 'starting>ready'],
    ]);
    assert.deepEqual(movesOf(1), [
      ['ready>draining', 'draining>exited'],
      ['ready>draining', 'draining>exited'],
    ]);

    // Only JSON values travel to workers.
    for (const notJson of [undefined, () => 1, 10n]) {
      await assert.rejects(ls.broadcast(notJson), (error: unknown) => {
        assert.ok(error instanceof LiveswapError);
        assert.equal(error.code, status.INVALID_ARGUMENT);
        return true;
      });
    }

    // Expected failures are typed, with their gRPC code.
    await assert.rejects(ls.upgrade(fixture('no-such.js')), (error: unknown) => {
      assert.ok(error instanceof LiveswapError);
      assert.equal(error.code, status.INVALID_ARGUMENT);
      return true;
    });

    // The same master over gRPC.
    const [address, port] = ls.endpoint!.split(':');
    const client = connect({ address: address!, port: Number(port) });
    try {
      const remote = await client.status();
      assert.equal(remote.generation, 2);
      assert.equal(remote.masterPid, process.pid);
      seen.push(...remote.workers.map((w) => w.pid));
      const delivered = await client.broadcast({ hello: 'api' });
      assert.equal(delivered.delivered, 2);
      const watch = client.watch();
      const snapshot = await watch.next();
      assert.equal(snapshot.value?.event?.$case, 'snapshot');
      await watch.return();
    } finally {
      client.close();
    }
  } finally {
    const result = await ls.die();
    assert.equal(result.stopped, 2);
    await ls.stopped;
    delete process.env.APP_PORT;
  }
  await expectGone(seen);
});

test('liveswap(target) rejects with the reason when the first start fails, leaving nothing behind', async () => {
  await assert.rejects(
    liveswap({ target: fixture('boot-throws.js'), port: 0, logLevel: 'silent', workerOutput: 'ignore' }),
    /start failed: worker \d+ exited with code 1 before listening: Error: Cannot find module/,
  );
});
