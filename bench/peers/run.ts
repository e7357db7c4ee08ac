/**
 * `npm run bench:peers`: one deploy under load with liveswap, a hand-rolled
 * node:cluster primary, PM2 `reload` and naught `deploy`, measured in the
 * same run on this machine (loopback only). See README.md beside this file.
 *
 * Each tool (peers.ts) runs the same app (test/fixtures' server; 2 workers)
 * on a free port, under the same load: KEEP_ALIVE clients on one keep-alive
 * socket each and CLOSE clients opening a connection per request, looping
 * GET / (bench/lib/load-generator.ts, two child processes). After WARMUP_MS,
 * STEADY_MS of steady load give the req/s; then SLOW requests of SLOW_MS are
 * sent, and once every one has reached a worker the deploy command runs
 * (v1 → v2). The load goes on TAIL_MS after the command returned and the slow
 * requests settled, and AFTER_DEPLOY_MS after the deploy started. ROUNDS
 * rounds (BENCH_PEERS_ROUNDS, default 3), each deploying every tool once, on
 * a fresh server.
 *
 * Reported per tool: failed requests by kind, slow requests answered (by the
 * old version), deploy command start → the last old-version answer, the
 * command's time, steady req/s. Prints a markdown table, writes
 * bench/results/peers.json and draws bench/peers/timeline.svg (the first
 * round). PM2 and naught come from bench/peers/package.json, installed with
 * `npm ci` there when missing. Every process started is stopped, also on
 * Ctrl-C and on failure.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, get } from '../../test/helpers/net.js';
import { ROOT } from '../../test/helpers/paths.js';
import { waitFor, withDeadline } from '../../test/helpers/wait.js';
import { body, cutover } from '../lib/cutover.js';
import { answeredAt, isFailure, LoadGenerator, type Request } from '../lib/load.js';
import { now, type SlowResult } from '../lib/load-protocol.js';
import { median, ms, table, writeJson } from '../lib/report.js';
import { DEPLOY_DEADLINE_MS, liveswap, naught, PEERS_DIR, plainCluster, pm2, type Peer } from './peers.js';
import { bucketize, timelineSvg, type Bucket, type Sample } from './timeline.js';

const ROUNDS = Number(process.env.BENCH_PEERS_ROUNDS ?? 3);
const KEEP_ALIVE = 32;
const CLOSE = 32;
const SLOW = 8;
const SLOW_MS = 1000;
const WARMUP_MS = 1000;
const STEADY_MS = 2000;
/** The load goes on this long after the command returned and the slow requests settled, */
const TAIL_MS = 1500;
/** and at least this long after the deploy started, so that the timelines cover the same span. */
const AFTER_DEPLOY_MS = 5000;
/** Bounds of every load loop, whatever happens: requests per client, and time. */
const MAX_PER_CLIENT = 100_000;
const HARD_STOP_MS = 60_000;
const BUCKET_MS = 100;
/** The timeline starts this long before the deploy. */
const TIMELINE_FROM_MS = -1000;
const OLD = 'v1';
const NEW = 'v2';

/** Every peer that may have processes running: killed on Ctrl-C, on a crash, at exit. */
const live = new Set<Peer>();
let tempRoot = '';

function killEverything(): void {
  for (const peer of live) peer.killNow();
  live.clear();
  if (tempRoot) fs.rmSync(tempRoot, { recursive: true, force: true });
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping every process of the bench`);
    killEverything();
    process.exit(130);
  });
}
process.on('exit', killEverything);

/** PM2 and naught at the versions bench/peers/package.json pins, installed from its lock file when they are not. */
function ensureInstalled(): void {
  const wanted = JSON.parse(fs.readFileSync(path.join(PEERS_DIR, 'package.json'), 'utf8')).dependencies as Record<string, string>;
  const installed = (name: string) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(PEERS_DIR, 'node_modules', name, 'package.json'), 'utf8')).version as string;
    } catch {
      return undefined;
    }
  };
  if (Object.entries(wanted).every(([name, version]) => installed(name) === version)) return;
  console.log(`installing ${Object.entries(wanted).map(([n, v]) => `${n}@${v}`).join(', ')} in bench/peers (npm ci)`);
  const npm = spawnSync('npm', ['ci', '--prefix', PEERS_DIR, '--no-audit', '--no-fund'], { stdio: 'inherit' });
  if (npm.status !== 0) throw new Error(`npm ci in bench/peers failed (exit ${npm.status ?? npm.signal})`);
}

interface PeerRun {
  peer: string;
  round: number;
  requests: number;
  failed: number;
  /** Of them, requests of the keep-alive clients (the rest: connection-close clients). */
  failedKeepAlive: number;
  failedByKind: Record<string, number>;
  slowAnswered: number;
  slowSent: number;
  slowOutcomes: Record<string, number>;
  /** ms from the deploy command's start. */
  lastOldMs: number;
  firstNewMs: number;
  commandMs: number;
  /** When the load stopped. */
  loadMs: number;
  /** The old version still answered in the last 250 ms of the load: the deploy had not ended when the load stopped. */
  oldAtTheEnd: boolean;
  deployOk: boolean;
  deployTimedOut: boolean;
  deployOutput: string;
  steadyRps: number;
  /** The load's requests, placed for the timeline. */
  samples: Sample[];
}

/** ECONNRESET, ECONNREFUSED, EPIPE, timeout, HTTP 502... (Node's http client reports "socket hang up" as ECONNRESET). */
function failureKind(outcome: string): string {
  if (outcome.startsWith('http:')) return `HTTP ${outcome.slice('http:'.length)}`;
  const code = outcome.slice('error:'.length);
  return code === 'TIMEOUT' ? 'timeout' : code;
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

/** One deploy of one tool under load, on a fresh server. */
async function measure(peer: Peer, round: number): Promise<PeerRun> {
  const port = await freePort();
  live.add(peer);
  await peer.start(port);
  await waitFor(`${peer.name} to answer ${OLD}`, async () => (await get(port, '/', false, 2000)).body === OLD, { timeoutMs: 10_000 });
  const keepAlive = new LoadGenerator();
  const close = new LoadGenerator();
  let requests: Request[] = [];
  let keepAliveRequests: Request[] = [];
  let slowResults: SlowResult[] = [];
  let deployAt = 0;
  let returnedAt = 0;
  let steadyFrom = 0;
  let loadStoppedAt = 0;
  let deploy: Awaited<ReturnType<Peer['deploy']>> = { ok: false, timedOut: false, output: '' };
  try {
    const load = { port, maxPerClient: MAX_PER_CLIENT, hardStopMs: HARD_STOP_MS };
    keepAlive.start({ ...load, clients: KEEP_ALIVE, keepAlive: true });
    close.start({ ...load, clients: CLOSE, keepAlive: false });
    await sleep(WARMUP_MS);
    steadyFrom = now();
    await sleep(STEADY_MS);
    const tag = `peers${round}`;
    const slow = keepAlive.slow(port, SLOW, SLOW_MS, tag);
    await waitFor(
      `${SLOW} slow requests to reach the ${peer.name} workers`,
      () => (peer.output().match(new RegExp(`slow request ${tag}-\\d+ started`, 'g'))?.length ?? 0) === SLOW,
      { timeoutMs: 10_000, intervalMs: 5 },
    );
    deployAt = now();
    deploy = await peer.deploy();
    returnedAt = now();
    slowResults = await withDeadline('the slow requests to settle', slow, SLOW_MS + 15_000);
    await sleep(Math.max(TAIL_MS, deployAt + AFTER_DEPLOY_MS - now()));
  } finally {
    loadStoppedAt = now();
    keepAliveRequests = await keepAlive.stop();
    requests = [...keepAliveRequests, ...(await close.stop())].sort((a, b) => a.sentAt - b.sentAt);
    await Promise.all([keepAlive.close(), close.close()]);
    await peer.stop();
    live.delete(peer);
  }
  const failures = requests.filter(isFailure);
  const { firstNewMs, lastOldMs } = cutover(requests, { from: OLD, to: NEW, startedAt: deployAt, returnedAt }, Infinity);
  const steady = requests.filter((r) => !isFailure(r) && answeredAt(r) >= steadyFrom && answeredAt(r) < steadyFrom + STEADY_MS).length;
  const kindOf = (r: Request): Sample['kind'] => (isFailure(r) ? 'failed' : body(r) === OLD ? 'old' : body(r) === NEW ? 'new' : 'failed');
  return {
    peer: peer.name,
    round,
    requests: requests.length,
    failed: failures.length,
    failedKeepAlive: keepAliveRequests.filter(isFailure).length,
    failedByKind: countBy(failures, (r) => failureKind(r.outcome)),
    slowAnswered: slowResults.filter((s) => s.outcome === `body:${OLD}`).length,
    slowSent: SLOW,
    slowOutcomes: countBy(slowResults, (s) => s.outcome),
    lastOldMs,
    firstNewMs,
    commandMs: returnedAt - deployAt,
    loadMs: loadStoppedAt - deployAt,
    oldAtTheEnd: deployAt + lastOldMs > loadStoppedAt - 250,
    deployOk: deploy.ok,
    deployTimedOut: deploy.timedOut,
    deployOutput: deploy.ok ? '' : deploy.output.slice(-2000),
    steadyRps: steady / (STEADY_MS / 1000),
    samples: requests.map((r) => ({ atMs: answeredAt(r) - deployAt, kind: kindOf(r) })),
  };
}

const kinds = (counts: Record<string, number>) =>
  Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([kind, count]) => `${kind} ${count}`)
    .join(', ') || '-';

function row(name: string, command: string, runs: readonly PeerRun[]) {
  const failedByKind: Record<string, number> = {};
  for (const run of runs) for (const [kind, count] of Object.entries(run.failedByKind)) failedByKind[kind] = (failedByKind[kind] ?? 0) + count;
  return {
    tool: name,
    deploy: `\`${command}\``,
    requests: runs.reduce((sum, r) => sum + r.requests, 0),
    'failed, per deploy': runs.map((r) => r.failed).join(', '),
    'of them keep-alive': runs.map((r) => r.failedKeepAlive).join(', '),
    'failed by kind (all deploys)': kinds(failedByKind),
    'slow answered': `${runs.reduce((sum, r) => sum + r.slowAnswered, 0)} of ${runs.reduce((sum, r) => sum + r.slowSent, 0)}`,
    'deploy start → last old answer, ms': runs.map((r) => `${ms(r.lastOldMs)}${r.oldAtTheEnd ? ' (still answering when the load stopped)' : ''}`).join(', '),
    'command ms': runs.map((r) => (r.deployTimedOut ? `> ${DEPLOY_DEADLINE_MS} (no end)` : `${ms(r.commandMs)}${r.deployOk ? '' : ' (failed)'}`)).join(', '),
    'steady req/s': ms(median(runs.map((r) => r.steadyRps))),
  };
}

async function main() {
  const began = Date.now();
  ensureInstalled();
  const date = new Date().toISOString();
  const machine = `node ${process.version}, ${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? ''}`;
  const loadAverage = os.loadavg();
  console.log(`peers benchmark — ${machine}, load average ${loadAverage[0]!.toFixed(1)}; ${ROUNDS} rounds, each one deploy per tool`);
  tempRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'liveswap-peers-'));
  const makers: ((dir: string) => Peer)[] = [() => liveswap(), plainCluster, pm2, naught];
  const runs: PeerRun[] = [];
  const commands = new Map<string, string>();
  for (let round = 1; round <= ROUNDS; round++) {
    // Each round starts with the next tool, so that none always runs first.
    for (const i of makers.map((_, k) => (k + round - 1) % makers.length)) {
      const dir = path.join(tempRoot, `r${round}-${i}`);
      fs.mkdirSync(dir);
      const peer = makers[i]!(dir);
      commands.set(peer.name, peer.command);
      const run = await measure(peer, round);
      runs.push(run);
      console.log(
        `round ${round} ${peer.name}: ${run.failed} failed (${kinds(run.failedByKind)}; ${run.failedKeepAlive} keep-alive), slow ${run.slowAnswered}/${run.slowSent}, last old ${ms(run.lastOldMs)} ms, command ${ms(run.commandMs)} ms${run.deployOk ? '' : ` — deploy ${run.deployTimedOut ? 'timed out' : 'failed'}: ${run.deployOutput.trim().split('\n').slice(-3).join(' / ')}`}`,
      );
    }
  }
  const names = [...commands.keys()];
  const rows = names.map((name) => row(name, commands.get(name)!, runs.filter((r) => r.peer === name)));
  console.log(
    `\n### One deploy (v1 → v2) under load, ${ROUNDS} times each: 2 workers, ${KEEP_ALIVE} keep-alive + ${CLOSE} connection-close clients, ${SLOW} requests of ${SLOW_MS / 1000} s in flight\n\n${table(rows)}\n\n${machine}, ${date.slice(0, 10)} (${Math.round((Date.now() - began) / 1000)} s)`,
  );

  // The timeline: the first round, every panel on the same axis.
  const first = names.map((name) => runs.find((r) => r.peer === name && r.round === 1)!);
  // To the end of the shortest load, and at least 1 s past the slowest command.
  const endMs = Math.max(Math.min(...first.map((r) => r.loadMs)), ...first.map((r) => r.commandMs + 1000));
  const range = { fromMs: TIMELINE_FROM_MS, toMs: Math.floor(endMs / 500) * 500, bucketMs: BUCKET_MS };
  const panels = first.map((r) => ({
    title: r.peer,
    note: `${r.failed} failed · slow ${r.slowAnswered} of ${r.slowSent} answered · last old answer ${ms(r.lastOldMs)} ms`,
    buckets: bucketize(r.samples, range),
    markers: r.deployTimedOut ? [] : [{ atMs: r.commandMs, label: 'command returned' }],
  }));
  const svg = timelineSvg(panels, {
    fromMs: range.fromMs,
    bucketMs: BUCKET_MS,
    heading: `One deploy (${OLD} → ${NEW}) under load: what answered, per ${BUCKET_MS} ms`,
    subheading: `2 workers; ${KEEP_ALIVE} keep-alive + ${CLOSE} connection-close clients, ${SLOW} requests of ${SLOW_MS / 1000} s in flight; node ${process.version}, ${os.availableParallelism()} cores, ${date.slice(0, 10)}`,
    oldLabel: OLD,
    newLabel: NEW,
  });
  const svgFile = path.join(PEERS_DIR, 'timeline.svg');
  fs.writeFileSync(svgFile, svg);

  const file = writeJson(path.join(ROOT, 'bench', 'results'), 'peers.json', {
    node: process.version,
    cores: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? '',
    loadAverage,
    date,
    load: { keepAlive: KEEP_ALIVE, close: CLOSE, slow: SLOW, slowMs: SLOW_MS, warmupMs: WARMUP_MS, steadyMs: STEADY_MS, tailMs: TAIL_MS },
    rows,
    runs: runs.map(({ samples: _, ...run }) => run),
    timeline: { ...range, panels: panels.map((p) => ({ title: p.title, buckets: p.buckets as Bucket[] })) },
  });
  console.log(`wrote ${path.relative(process.cwd(), file)} and ${path.relative(process.cwd(), svgFile)}`);
}

try {
  await main();
} catch (error) {
  console.error(error);
  killEverything();
  process.exit(1);
}
