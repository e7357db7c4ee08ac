/**
 * `npm run bench`: zero dropped requests under real load, against plain
 * node:cluster, measured in one run on this machine (loopback only).
 *
 * For each pool size (BENCH_FORKS, default "2,8"):
 *   1. Steady state (steady-state.ts): req/s of liveswap and of a
 *      hand-rolled node:cluster primary (bench/lib/plain-cluster.ts) running
 *      the same app with the same number of workers, keep-alive and
 *      connection-close clients, against a second plain primary as a control.
 *   2. Upgrades under load: 32 clients looping (keep-alive, then
 *      connection-close), and before each of 3 back-to-back upgrades, 8 slow
 *      requests (3 s) in flight on the old workers. Counts requests and
 *      failures by kind, slow requests completed, p50/p99 latency steady and
 *      inside the upgrade windows, upgrade duration, time from the upgrade's
 *      start to the first new-version and to the last old-version response,
 *      the peak number of worker processes, and master RSS before and after.
 * Then, with 2 workers:
 *   3. Cutover timing of a small app (every request < 100 ms) under light
 *      load: 5 upgrades.
 *   4. Master RSS and fds across 20 consecutive upgrades under load, counted
 *      from the first (after 10 s of load without upgrades), beside three
 *      controls under the same load for the same time with no upgrade: the
 *      liveswap master, a plain primary, and a plain primary with node:tls.
 *   5. gRPC: the acceptance suite's @grpc/grpc-js server (test/fixtures/
 *      grpc) upgraded v1 → v2 under 16 channels looping unary calls, with 8
 *      calls of 3 s in flight: calls, failures, slow calls completed, upgrade
 *      duration, first v2 and last v1 answer.
 *   6. Master self-upgrade (test/helpers/master-upgrade.ts): `liveswap
 *      --upgrade-master --node <another Node line>` under 32 keep-alive and
 *      32 connection-close clients, 8 slow requests in flight and a control
 *      client calling with a 1 s deadline per call: requests, failures, slow
 *      requests answered, control calls failed, the CLI's time, the Node
 *      versions before and after, workers left behind.
 *
 * Every load loop is bounded (per-client count and a hard stop in the load
 * generator); every wait for an event has a deadline. Prints markdown tables
 * and writes bench/results/zero-drop.json.
 */
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { upgradeUnderLoad } from '../test/helpers/acceptance.js';
import { greeterScenario } from '../test/helpers/greeter.js';
import { freePort } from '../test/helpers/net.js';
import { fixture, ROOT } from '../test/helpers/paths.js';
import type { MasterProcess } from '../test/helpers/processes.js';
import { isAlive, waitFor } from '../test/helpers/wait.js';
import { masterUpgradeUnderLoad, SLOW_REQUESTS } from '../test/helpers/master-upgrade.js';
import { cutover, type UpgradeWindow } from './lib/cutover.js';
import { isFailure, LoadGenerator, type Request } from './lib/load.js';
import { now } from './lib/load-protocol.js';
import { fdCount, peakChildren, rssMiB } from './lib/proc.js';
import { ms, percentile, table, writeJson } from './lib/report.js';
import { liveswapMaster, plainCluster } from './lib/servers.js';
import { STEADY_ROUNDS, STEADY_SEGMENTS, STEADY_SLICE_MS, steadyState, withInterval } from './steady-state.js';

const WORKER_COUNTS = (process.env.BENCH_FORKS ?? '2,8').split(',').map(Number);
/** Which parts to run (all by default): steady, upgrades, cutover, rss, grpc. */
const PHASES = new Set((process.env.BENCH_PHASES ?? 'steady,upgrades,cutover,rss,grpc,master').split(','));
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 32);
const SLOW = 8;
const SLOW_MS = 3000;
const UPGRADES = 3;
const WARMUP_MS = 500;
const TIMING_UPGRADES = 5;
/**
 * Between the cutover-timing upgrades: one upgrade a second. The master boots
 * its spares when an upgrade ends; an upgrade that comes while they are still
 * booting (under this load, within ~0.5 s) waits for them, and the spares
 * column shows it.
 */
const TIMING_GAP_MS = Number(process.env.BENCH_TIMING_GAP_MS ?? 1000);
const RSS_UPGRADES = 20;
/**
 * Load before the RSS baseline, with no upgrade. The master's RSS climbs by
 * about 10 MiB in the first 5–8 s of traffic (V8 sizing its young generation
 * for the connections cluster's round-robin passes through the master), then
 * more slowly, upgrades or not (see rssAcrossUpgrades); measured from a cold
 * start, the 20 upgrades would be charged with that first step. Both figures
 * are printed.
 */
const RSS_LOAD_WARMUP_MS = 10_000;
const VERSIONS = ['v1', 'v2', 'v3'];

function failuresByKind(requests: readonly Request[]): string {
  const kinds: Record<string, number> = {};
  for (const r of requests.filter(isFailure)) kinds[r.outcome] = (kinds[r.outcome] ?? 0) + 1;
  const text = Object.entries(kinds).map(([kind, count]) => `${kind} ${count}`).join(', ');
  return text || '-';
}

// --- 2. upgrades under load with slow requests ----------------------------

async function upgradesUnderLoad(forks: number, keepAlive: boolean) {
  const port = await freePort();
  const master = await liveswapMaster(forks, port);
  const load = new LoadGenerator();
  const windows: UpgradeWindow[] = [];
  const slowResults: { outcome: string; expected: string }[] = [];
  let requests: Request[] = [];
  let peakWorkers = 0;
  const rssBefore = rssMiB(master.pid);
  let rssAfter = NaN;
  let steadyFrom = 0;
  let steadyTo = 0;
  try {
    load.start({ port, clients: CLIENTS, keepAlive });
    await sleep(WARMUP_MS);
    steadyFrom = now();
    await sleep(2000);
    steadyTo = now();
    const peak = peakChildren(master.pid);
    for (let u = 0; u < UPGRADES; u++) {
      const from = VERSIONS[u % 3]!;
      const to = VERSIONS[(u + 1) % 3]!;
      const tag = `${keepAlive ? 'ka' : 'close'}${forks}u${u}`;
      const slow = load.slow(port, SLOW, SLOW_MS, tag);
      await waitFor(
        `${SLOW} slow requests to reach the old workers`,
        () => (master.stdout().match(new RegExp(`slow request ${tag}-\\d+ started`, 'g'))?.length ?? 0) === SLOW,
        { timeoutMs: 10_000, intervalMs: 5 },
      );
      const startedAt = now();
      await master.client.upgrade({ target: fixture(`${to}.js`) });
      const returnedAt = now();
      for (const result of await slow) slowResults.push({ outcome: result.outcome, expected: `body:${from}` });
      windows.push({ from, to, startedAt, returnedAt, firstNewMs: NaN, lastOldMs: NaN });
    }
    await sleep(300); // traffic on the final version
    peakWorkers = peak.stop();
    rssAfter = rssMiB(master.pid);
  } finally {
    requests = await load.stop();
    await load.close();
    await master.stop();
  }
  for (const [i, w] of windows.entries()) {
    const until = windows[i + 1]?.startedAt ?? Infinity;
    Object.assign(w, cutover(requests, w, until));
  }
  const steady = requests.filter((r) => r.sentAt >= steadyFrom && r.sentAt < steadyTo).map((r) => r.latencyMs);
  const inWindow = requests.filter((r) => windows.some((w) => r.sentAt >= w.startedAt && r.sentAt <= w.returnedAt)).map((r) => r.latencyMs);
  const durations = windows.map((w) => w.returnedAt - w.startedAt);
  return {
    row: {
      workers: forks,
      clients: `${CLIENTS} ${keepAlive ? 'keep-alive' : 'close'}`,
      requests: requests.length,
      failed: requests.filter(isFailure).length,
      'failed by kind': failuresByKind(requests),
      'slow completed': `${slowResults.filter((s) => s.outcome === s.expected).length} of ${slowResults.length}`,
      'p50/p99 steady ms': `${percentile(steady, 50).toFixed(1)} / ${percentile(steady, 99).toFixed(1)}`,
      'p50/p99 upgrade ms': `${percentile(inWindow, 50).toFixed(1)} / ${percentile(inWindow, 99).toFixed(1)}`,
      'upgrade ms': durations.map(ms).join(', '),
      'first new ms': windows.map((w) => ms(w.firstNewMs)).join(', '),
      'last old ms': windows.map((w) => ms(w.lastOldMs)).join(', '),
      'peak workers': peakWorkers,
      'master RSS MiB': `${rssBefore.toFixed(1)} → ${rssAfter.toFixed(1)}`,
    },
    failed: requests.filter(isFailure).length,
    slowCompleted: slowResults.filter((s) => s.outcome === s.expected).length,
    slowStarted: slowResults.length,
    windows,
  };
}

// --- 3. cutover timing, 4. RSS over many upgrades ---------------------------

/** Light mixed load: half the clients keep-alive, half connection-close. */
function lightLoad(port: number, clients = 8) {
  const generators = [new LoadGenerator(), new LoadGenerator()];
  generators[0]!.start({ port, clients: clients / 2, keepAlive: true });
  generators[1]!.start({ port, clients: clients / 2, keepAlive: false });
  return {
    async stop(): Promise<Request[]> {
      const all = (await Promise.all(generators.map((g) => g.stop()))).flat();
      await Promise.all(generators.map((g) => g.close()));
      return all.sort((a, b) => a.sentAt - b.sentAt);
    },
  };
}

/** A server the light-load phases can run: its primary's pid, and a way to stop it. */
interface Primary {
  readonly pid: number;
  stop(): Promise<void>;
}

/** A 2-worker server under light load: runs `body` after a warm-up, then stops both; resolves with every request sent. */
async function underLightLoad<P extends Primary>(start: (port: number) => Promise<P>, body: (server: P) => Promise<void>): Promise<Request[]> {
  const port = await freePort();
  const server = await start(port);
  const load = lightLoad(port);
  let requests: Request[] = [];
  try {
    await sleep(WARMUP_MS);
    await body(server);
  } finally {
    requests = await load.stop();
    await server.stop();
  }
  return requests;
}

async function cutoverTiming() {
  const windows: UpgradeWindow[] = [];
  const sparesReady: number[] = [];
  const requests = await underLightLoad((port) => liveswapMaster(2, port), async (master) => {
    for (let u = 0; u < TIMING_UPGRADES; u++) {
      const from = VERSIONS[u % 3]!;
      const to = VERSIONS[(u + 1) % 3]!;
      sparesReady.push((await master.client.status()).spares);
      const startedAt = now();
      await master.client.upgrade({ target: fixture(`${to}.js`) });
      windows.push({ from, to, startedAt, returnedAt: now(), firstNewMs: NaN, lastOldMs: NaN });
      await sleep(TIMING_GAP_MS);
    }
  });
  return windows.map((w, i) => {
    const until = windows[i + 1]?.startedAt ?? Infinity;
    Object.assign(w, cutover(requests, w, until));
    const inWindow = requests.filter((r) => r.sentAt >= w.startedAt && r.sentAt < until);
    return {
      upgrade: `${w.from} → ${w.to}`,
      'spares ready': sparesReady[i]!,
      'RPC ms': ms(w.returnedAt - w.startedAt),
      'first new ms': ms(w.firstNewMs),
      'last old ms': ms(w.lastOldMs),
      requests: inWindow.length,
      failed: inWindow.filter(isFailure).length,
      'slowest request ms': ms(Math.max(...inWindow.map((r) => r.latencyMs))),
      _rpc: w.returnedAt - w.startedAt,
      _lastOld: w.lastOldMs,
    };
  });
}

/** One server's RSS across the RSS phase: sampled after the load warm-up, then after each upgrade (or at the same pace, for a control). */
interface RssRun {
  rssAtStart: number;
  rss: number[];
  fds: number[];
  failed: number;
  requests: number;
  ms: number;
}

const spreadOf = (rss: readonly number[]) => (Math.max(...rss) - Math.min(...rss)) / rss[0]!;

/**
 * The server's RSS after RSS_LOAD_WARMUP_MS of load, then at RSS_UPGRADES
 * more points: after each upgrade when `upgrade` is given, else every
 * `everyMs` (the controls, over the same wall time).
 */
async function rssRun<P extends Primary>(start: (port: number) => Promise<P>, upgrade?: (server: P, u: number) => Promise<void>, everyMs = 0): Promise<RssRun> {
  const run: RssRun = { rssAtStart: NaN, rss: [], fds: [], failed: 0, requests: 0, ms: 0 };
  const sample = (pid: number) => {
    run.rss.push(rssMiB(pid));
    run.fds.push(fdCount(pid));
  };
  const requests = await underLightLoad(start, async (server) => {
    run.rssAtStart = rssMiB(server.pid);
    await sleep(RSS_LOAD_WARMUP_MS);
    sample(server.pid);
    const began = now();
    for (let u = 0; u < RSS_UPGRADES; u++) {
      if (upgrade) await upgrade(server, u);
      else await sleep(everyMs);
      sample(server.pid);
    }
    run.ms = now() - began;
  });
  run.requests = requests.length;
  run.failed = requests.filter(isFailure).length;
  return run;
}

/**
 * Master RSS across RSS_UPGRADES upgrades, and three controls under the same
 * load for the same wall time with no upgrade: the liveswap master, a plain
 * node:cluster primary, and a plain primary that has loaded node:tls (as
 * grpc-js does in the master). Node's round-robin primary promotes garbage
 * under load once node:tls is loaded (0 MB/s without it), and V8 collects it
 * only at its next full GC, so RSS climbs with time under load, upgrades or
 * not; the controls show how much of the climb the upgrades account for.
 */
async function rssAcrossUpgrades() {
  const upgrades = await rssRun<MasterProcess>(
    (port) => liveswapMaster(2, port),
    async (master, u) => void (await master.client.upgrade({ target: fixture(`${VERSIONS[(u + 1) % 3]}.js`) })),
  );
  const everyMs = upgrades.ms / RSS_UPGRADES;
  const controls = {
    'liveswap master, no upgrade': await rssRun((port) => liveswapMaster(2, port), undefined, everyMs),
    'plain node:cluster primary': await rssRun((port) => plainCluster(2, port), undefined, everyMs),
    'plain primary with node:tls loaded': await rssRun((port) => plainCluster(2, port, 'node:tls'), undefined, everyMs),
  };
  const row = (server: string, run: RssRun, upgradeCount: number) => ({
    server,
    upgrades: upgradeCount,
    s: (run.ms / 1000).toFixed(1),
    requests: run.requests,
    failed: run.failed,
    'RSS at start MiB': run.rssAtStart.toFixed(1),
    [`after ${RSS_LOAD_WARMUP_MS / 1000} s of load`]: run.rss[0]!.toFixed(1),
    'at the end': run.rss.at(-1)!.toFixed(1),
    'min–max': `${Math.min(...run.rss).toFixed(1)}–${Math.max(...run.rss).toFixed(1)}`,
    'end vs start': `${(((run.rss.at(-1)! - run.rss[0]!) / run.rss[0]!) * 100).toFixed(1)}%`,
    spread: `${(spreadOf(run.rss) * 100).toFixed(1)}%`,
    'fds start → end': `${run.fds[0]} → ${run.fds.at(-1)}`,
  });
  const rows = [row('liveswap master', upgrades, RSS_UPGRADES), ...Object.entries(controls).map(([name, run]) => row(name, run, 0))];
  return { rows, upgrades, controls, spread: spreadOf(upgrades.rss), failed: upgrades.failed };
}

// --- 5. gRPC ------------------------------------------------------------------

const GRPC_CHANNELS = 16;

/** The acceptance scenario of the gRPC app (test/helpers/acceptance.ts), measured. */
async function grpcUpgrade() {
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const run = await upgradeUnderLoad({ after: (fn) => void cleanups.push(fn) }, greeterScenario(GRPC_CHANNELS));
    const stats = await run.load.stop();
    const answeredBy = (version: string) => stats.replies.filter((r) => r.body === version).map((r) => r.answeredAt - run.calledAt);
    const firstNew = Math.min(...answeredBy('v2'));
    const upgradeMs = run.returnedAt - run.calledAt;
    const slowCompleted = run.slow.filter((s) => s.version === 'v1').length;
    return {
      row: {
        workers: 2,
        channels: GRPC_CHANNELS,
        calls: stats.ok + stats.failed,
        failed: stats.failed,
        'failed by kind': Object.entries(stats.errors).map(([kind, count]) => `${kind} ${count}`).join(', ') || '-',
        'slow completed': `${slowCompleted} of ${run.slow.length}`,
        'upgrade ms': ms(upgradeMs),
        'first new ms': ms(firstNew),
        'last old ms': ms(Math.max(...answeredBy('v1'))),
      },
      failed: stats.failed,
      slowCompleted,
      slowStarted: run.slow.length,
      upgradeMs,
      firstNew,
    };
  } finally {
    for (const cleanup of cleanups) await cleanup();
  }
}

// --- 6. Master self-upgrade ---------------------------------------------------

async function masterUpgrade() {
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const run = await masterUpgradeUnderLoad({ after: (fn) => void cleanups.push(fn) });
    const left = run.before.workers.filter((w) => isAlive(w.pid)).length;
    return {
      row: {
        clients: '32 keep-alive + 32 close',
        requests: run.stats.ok + run.stats.failed,
        failed: run.stats.failed,
        'slow answered': `${run.slowAnswered} of ${SLOW_REQUESTS}`,
        'control calls failed (1 s deadline)': `${run.control.failed.length} of ${run.control.ok + run.control.failed.length}`,
        'upgrade-master ms': ms(run.cliMs),
        node: `${run.before.nodeVersion} → ${run.after.nodeVersion}`,
        'old workers left': left,
      },
      ok: run.cli.code === 0 && run.stats.failed === 0 && run.slowAnswered === SLOW_REQUESTS && run.control.failed.length === 0 && left === 0,
      failed: run.stats.failed,
    };
  } finally {
    for (const cleanup of cleanups) await cleanup();
  }
}

// --- main -------------------------------------------------------------------

async function main() {
  const began = Date.now();
  console.log(`liveswap zero-drop benchmark — node ${process.version}, ${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? ''}`);
  const steadyRows = [];
  const upgradeRuns = [];
  for (const forks of WORKER_COUNTS) {
    if (PHASES.has('steady')) steadyRows.push(...(await steadyState(forks, CLIENTS)));
    if (PHASES.has('upgrades')) for (const keepAlive of [true, false]) upgradeRuns.push(await upgradesUnderLoad(forks, keepAlive));
  }
  const timing = PHASES.has('cutover') ? await cutoverTiming() : undefined;
  const rss = PHASES.has('rss') ? await rssAcrossUpgrades() : undefined;
  const grpc = PHASES.has('grpc') ? await grpcUpgrade() : undefined;
  const selfUpgrade = PHASES.has('master') ? await masterUpgrade() : undefined;

  const strip = (row: Record<string, string | number>) => Object.fromEntries(Object.entries(row).filter(([k]) => !k.startsWith('_')));
  const targets: { target: string; measured: string; met: string }[] = [];
  const target = (name: string, met: boolean, measured: string) => targets.push({ target: name, measured, met: met ? 'yes' : 'NO' });
  if (steadyRows.length > 0) {
    console.log(`\n### Steady state (${STEADY_SEGMENTS} segments of fresh servers, each ${STEADY_ROUNDS} rounds of one ${STEADY_SLICE_MS} ms slice per server, taking turns)\n\n${table(steadyRows.map((r) => r.row))}`);
    const ratios = steadyRows.map((r) => withInterval(r.ratio, r.ratioInterval)).join(', ');
    const controls = steadyRows.map((r) => withInterval(r.controlRatio, r.controlInterval)).join(', ');
    target('steady req/s ≥ 0.97× plain node:cluster', steadyRows.every((r) => r.ratio >= 0.97), `medians with 90% intervals ${ratios}; control ${controls}`);
    const failed = steadyRows.reduce((sum, r) => sum + r.failed, 0);
    target('0 failed requests in the steady rounds', failed === 0, `${failed} failed`);
  }
  if (upgradeRuns.length > 0) {
    console.log(`\n### ${UPGRADES} back-to-back upgrades under load, ${SLOW} requests of ${SLOW_MS / 1000} s in flight at each\n\n${table(upgradeRuns.map((r) => r.row))}`);
    const failed = upgradeRuns.reduce((a, r) => a + r.failed, 0);
    target('0 failed requests in every upgrade run', failed === 0, `${failed} failed`);
    const completed = upgradeRuns.reduce((a, r) => a + r.slowCompleted, 0);
    const started = upgradeRuns.reduce((a, r) => a + r.slowStarted, 0);
    target('every in-flight slow request completed', completed === started, `${completed} of ${started}`);
  }
  if (timing) {
    console.log(`\n### Cutover of 2 workers, small app, 8 clients (4 keep-alive, 4 close), one upgrade every ${TIMING_GAP_MS / 1000} s\n\n${table(timing.map(strip))}`);
    const lastOld = Math.max(...timing.map((t) => t._lastOld));
    const rpc = Math.max(...timing.map((t) => t._rpc));
    const failed = timing.reduce((a, t) => a + t.failed, 0);
    target('0 failed requests during the cutover upgrades', failed === 0, `${failed} failed`);
    target('last old-version response ≤ 200 ms (2 workers)', lastOld <= 200, `max ${ms(lastOld)} ms`);
    target('Upgrade RPC returns within 1 s (2 workers)', rpc <= 1000, `max ${ms(rpc)} ms`);
  }
  if (rss) {
    console.log(
      `\n### Master across ${RSS_UPGRADES} consecutive upgrades under load, from the first, after ${RSS_LOAD_WARMUP_MS / 1000} s of load (2 workers, 8 clients); controls: the same load for the same time, no upgrade\n\n${table(rss.rows)}`,
    );
    target('0 failed requests across the RSS upgrades', rss.failed === 0, `${rss.failed} failed`);
    target(`master RSS flat (±10%) across ${RSS_UPGRADES} upgrades`, rss.spread <= 0.1, `spread ${(rss.spread * 100).toFixed(1)}% of the value before the first upgrade`);
  }
  if (grpc) {
    console.log(`\n### gRPC: an @grpc/grpc-js server upgraded v1 → v2 under ${GRPC_CHANNELS} channels looping unary calls, ${grpc.slowStarted} calls of ${SLOW_MS / 1000} s in flight\n\n${table([grpc.row])}`);
    target('0 failed RPCs in the gRPC upgrade', grpc.failed === 0, `${grpc.failed} failed`);
    target('every in-flight slow call completed on the old version', grpc.slowCompleted === grpc.slowStarted, `${grpc.slowCompleted} of ${grpc.slowStarted}`);
    target('first new-version gRPC answer within 1 s of the Upgrade call', grpc.firstNew <= 1000, `${ms(grpc.firstNew)} ms`);
    target('gRPC Upgrade returns within 4 s', grpc.upgradeMs <= 4000, `${ms(grpc.upgradeMs)} ms`);
  }
  if (selfUpgrade) {
    console.log(`\n### The master upgrades itself (--upgrade-master --node <another Node line>) under load, ${SLOW_REQUESTS} slow requests in flight\n\n${table([selfUpgrade.row])}`);
    target('master self-upgrade: 0 failed, every slow request answered, control answering, 0 left behind', selfUpgrade.ok, `${selfUpgrade.failed} failed`);
  }
  console.log(`\n### Targets\n\n${table(targets)}\n\n(${Math.round((Date.now() - began) / 1000)} s)`);

  const file = writeJson(path.join(ROOT, 'bench', 'results'), 'zero-drop.json', {
    node: process.version,
    cores: os.availableParallelism(),
    date: new Date().toISOString(),
    steady: steadyRows,
    upgrades: upgradeRuns,
    timing: timing?.map(strip),
    rss,
    grpc: grpc?.row,
    master: selfUpgrade?.row,
    targets,
  });
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

await main();
