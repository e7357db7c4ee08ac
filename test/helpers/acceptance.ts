/**
 * The one scenario of the acceptance suite (test/acceptance-*.test.ts), for
 * every app and protocol: a master with 2 workers on release v1 of a real
 * app, steady load, slow requests in flight on the old workers, an Upgrade to
 * v2; then the checks of each kind of app, on counts:
 * - checkNoDrop (HTTP/1.1, HTTP/2, gRPC): no request failed, every slow one
 *   was answered by v1, every request sent after the Upgrade returned by v2,
 *   and the Upgrade returned within 1 s of the slowest in-flight answer, or
 *   of the last old worker's drain start when the new workers took longer
 *   than that to be ready (the drain waited for the requests, not for the
 *   drain timeout);
 * - checkRecipeCutover (WebSockets whose app closes them on the drain): no
 *   connection ended without a close frame (1006), and every client was on
 *   v2 by 1 s after the Upgrade returned.
 * The protocol's clients come in through `Scenario`; the drain timeout stays
 * at its default (30 s) unless a test sets `--drain-timeout`.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { WorkerState, type UpgradeResponse } from '../../src/client/index.js';
import type { Load, LoadStats } from './load.js';
import { freePort } from './net.js';
import { startMaster, type MasterProcess } from './processes.js';
import type { SocketFleet } from './socket-clients.js';
import { waitFor } from './wait.js';

export const SLOW = 8;
export const SLOW_MS = 3000;

export interface Scenario<L extends { stop(): Promise<unknown> }> {
  /** The releases: absolute paths. */
  v1: string;
  v2: string;
  /** Extra environment of the master (and so of the workers), e.g. TLS files. */
  env?: Record<string, string>;
  /** Extra arguments of the master, e.g. --drain-timeout. */
  args?: string[];
  /** Starts the steady load on the app's port. */
  load(port: number): L;
  /** Is the load being answered? */
  flowing(load: L): boolean;
  /** One slow request of SLOW_MS tagged `tag`; resolves with the version that answered. */
  slow?(port: number, tag: string): Promise<string>;
  /** What to wait for once the Upgrade has returned, before the checks. */
  settle(load: L, returnedAt: number): Promise<unknown>;
}

export interface SlowAnswer {
  version: string;
  answeredAt: number;
}

export interface Run<L> {
  master: MasterProcess;
  load: L;
  upgrade: UpgradeResponse;
  /** When the Upgrade was called and when it returned (Date.now()). */
  calledAt: number;
  returnedAt: number;
  /** The slow requests, in the order they were sent. */
  slow: SlowAnswer[];
  /** When the last old worker began draining, and when the last one exited (the master's transition times). */
  lastDrainBegan: number;
  lastOldExited: number;
}

/**
 * When each worker of generation 1 began draining and exited, from the
 * master's WatchWorkers stream; resolves once the stream is open (its
 * snapshot came), so that no transition of an upgrade called afterwards is
 * missed.
 */
async function watchDrains(master: MasterProcess): Promise<{ began: number[]; exited: number[]; stop(): void }> {
  const abort = new AbortController();
  const times = { began: [] as number[], exited: [] as number[] };
  const stream = master.client.watch({ signal: abort.signal });
  await stream.next(); // the snapshot
  void (async () => {
    for await (const item of stream) {
      const transition = item.event?.$case === 'transition' ? item.event.transition : undefined;
      if (transition?.worker?.generation !== 1) continue;
      if (transition.toState === WorkerState.WORKER_STATE_DRAINING) times.began.push(transition.time!.getTime());
      if (transition.toState === WorkerState.WORKER_STATE_EXITED) times.exited.push(transition.time!.getTime());
    }
  })().catch(() => {}); // ends with the abort, or with the master
  return { ...times, stop: () => abort.abort() };
}

/** Where the scenario registers its cleanup: a test's context, or the benchmark's list. */
export interface Cleanup {
  after(fn: () => Promise<void>): void;
}

/** Runs the scenario; `cleanup` stops the load and the master. */
export async function upgradeUnderLoad<L extends { stop(): Promise<unknown> }>(t: Cleanup, scenario: Scenario<L>): Promise<Run<L>> {
  const port = await freePort();
  const master = await startMaster(scenario.v1, { env: { APP_PORT: String(port), ...scenario.env }, args: scenario.args });
  let load: L | undefined;
  // The clients first: a master stopped under their load drains their connections.
  t.after(async () => {
    await load?.stop();
    await master.stop();
  });
  load = scenario.load(port);
  await waitFor('the load to be answered', () => scenario.flowing(load));

  const slowCount = scenario.slow ? SLOW : 0;
  const slow = Array.from({ length: slowCount }, async (_, i): Promise<SlowAnswer> => {
    const version = await scenario.slow!(port, `slow-${i}`);
    return { version, answeredAt: Date.now() };
  });
  // Every slow request has reached an old worker (the app logs `slow request|call <tag> started` on arrival).
  await waitFor(`${slowCount} slow requests to be in a worker`, () => {
    return (master.stdout().match(/slow (?:request|call) slow-\d+ started/g)?.length ?? 0) === slowCount;
  });

  const drains = await watchDrains(master);
  const calledAt = Date.now();
  const upgrade = await master.client.upgrade({ target: scenario.v2 }).finally(() => drains.stop());
  const returnedAt = Date.now();
  const slowAnswers = await Promise.all(slow);
  await scenario.settle(load, returnedAt);
  const lastDrainBegan = Math.max(...drains.began);
  return { master, load, upgrade, calledAt, returnedAt, slow: slowAnswers, lastDrainBegan, lastOldExited: Math.max(...drains.exited) };
}

/** A `settle`: waits until 200 requests were sent after the Upgrade returned, enough to see who answers now. */
export function answersSentAfter<L extends Load>(load: L, returnedAt: number): Promise<unknown> {
  return waitFor('200 requests sent after the upgrade returned', () => load.peek().filter((r) => r.sentAt > returnedAt).length >= 200);
}

/** The figures of one run, for the test's diagnostics and the table in docs/upgrade.md. */
function figures(run: Run<unknown>): string {
  const slowest = Math.max(...run.slow.map((s) => s.answeredAt));
  return (
    `upgrade ${run.returnedAt - run.calledAt} ms (server: ${run.upgrade.durationMs} ms), the last drain began ${run.lastDrainBegan - run.calledAt} ms and the last old worker exited ${run.lastOldExited - run.calledAt} ms after the call, ` +
    `returned ${run.returnedAt - slowest} ms after the slowest in-flight answer; ${run.slow.filter((s) => s.version === 'v1').length} of ${run.slow.length} slow answered`
  );
}

/** HTTP/1.1, HTTP/2 and gRPC: nothing failed, the slow requests finished on v1, the new requests go to v2, the drain did not wait for its timeout. */
export function checkNoDrop(t: TestContext, run: Run<unknown>, stats: LoadStats, note = ''): void {
  const firstV2 = Math.min(...stats.replies.filter((r) => r.body === 'v2').map((r) => r.answeredAt));
  t.diagnostic(`${stats.failed} failed of ${stats.ok + stats.failed}; ${figures(run)}; first v2 answer ${firstV2 - run.calledAt} ms after the call${note}`);

  assert.deepEqual(stats.errors, {}, `failed requests: ${JSON.stringify(stats.errors)}`);
  assert.equal(stats.failed, 0);
  assert.ok(stats.ok > 200, `only ${stats.ok} requests were answered`);
  assert.deepEqual(
    run.slow.map((s) => s.version),
    Array.from({ length: SLOW }, () => 'v1'),
    'every slow request was answered by the version that accepted it',
  );
  assert.equal(run.upgrade.killedAtDrainTimeout, 0, 'no worker was killed at the drain timeout');
  const later = stats.replies.filter((r) => r.sentAt > run.returnedAt);
  const stale = later.filter((r) => r.body !== 'v2');
  assert.ok(later.length > 0, 'requests were sent after the upgrade returned');
  assert.equal(stale.length, 0, `${stale.length} of ${later.length} later requests were answered by ${[...new Set(stale.map((r) => r.body))]}`);
  assert.deepEqual(Object.keys(stats.bodies).sort(), ['v1', 'v2']);
  // The old workers exited as soon as their last request was answered, not at
  // the drain timeout (30 s): the Upgrade returned within 1 s of the slowest
  // in-flight answer. An old worker is drained only once its replacement is
  // ready, so on a machine where booting takes longer than the slow requests
  // the drain begins after they were answered: then within 1 s of that.
  const slowest = Math.max(...run.slow.map((s) => s.answeredAt));
  const drainDone = Math.max(slowest, run.lastDrainBegan);
  assert.ok(
    run.returnedAt <= drainDone + 1000,
    `the upgrade returned ${run.returnedAt - drainDone} ms after the slowest in-flight answer or the last drain's start, whichever came later`,
  );
}

/** A `settle`: waits until every client is on v2, or until 1 s after the Upgrade returned (checkRecipeCutover counts them then). */
export function everyClientOnV2(fleet: SocketFleet, returnedAt: number): Promise<unknown> {
  return waitFor('every client on v2', () => fleet.on('v2') === fleet.clients.length, {
    timeoutMs: Math.max(0, returnedAt + 1000 - Date.now()),
  }).catch(() => {});
}

/** WebSockets with a drain recipe: no 1006, every client on v2 within 1 s of the Upgrade's return, the slow requests finished on v1. */
export function checkRecipeCutover(t: TestContext, run: Run<SocketFleet>): void {
  const fleet = run.load;
  const onV2 = fleet.on('v2');
  const lastOnV2 = Math.max(...fleet.clients.map((c) => (c.version === 'v2' ? c.versionSince : Infinity))) - run.returnedAt;
  const closedAt = fleet.clients.flatMap((c) => c.closedAt).map((at) => at - run.calledAt);
  t.diagnostic(
    `${fleet.clients.length} clients, closes ${JSON.stringify(fleet.closeCodes())} (errors ${JSON.stringify(fleet.errors())}) ${Math.min(...closedAt)}–${Math.max(...closedAt)} ms after the call, ` +
      `${onV2} on v2 by the deadline, the last ${lastOnV2} ms after the upgrade returned; ${figures(run)}`,
  );

  assert.equal(fleet.closeCodes()[1006], undefined, `closes by code: ${JSON.stringify(fleet.closeCodes())}`);
  assert.equal(onV2, fleet.clients.length, `${onV2} of ${fleet.clients.length} clients were on v2 1 s after the upgrade returned`);
  assert.ok(
    fleet.clients.every((c) => c.closes.length > 0),
    'every client lost its v1 connection (the app closed it) and reconnected',
  );
  assert.deepEqual(
    run.slow.map((s) => s.version),
    Array.from({ length: SLOW }, () => 'v1'),
    'every slow request was answered by the version that accepted it',
  );
  assert.equal(run.upgrade.killedAtDrainTimeout, 0, 'no worker was killed at the drain timeout');
}
