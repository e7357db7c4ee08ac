/**
 * `npm run bench:cli`: how long the CLI takes, against `node -e 0`, in one run
 * on this machine (loopback only), with the Node that runs the bench.
 *
 *   1. Round trips against a running master (2 workers of a small app, unix
 *      socket): `node -e 0`, `liveswap --status`, `liveswap -m` and
 *      `liveswap -u`, each spawned and waited for, in BENCH_CLI_ROUNDS rounds
 *      (default 10) that run every command once, so that all of them see the
 *      same load on a shared machine. One warm-up round first (not counted):
 *      it fills Node's compile cache on Node >= 22.1, as any earlier command
 *      would have. Medians, min–max, and the median over rounds of each
 *      command's time divided by `node -e 0`'s in the same round.
 *   2. A deploy from the shell: 2 workers of the small app under keep-alive
 *      load (8 clients), BENCH_CLI_UPGRADES (default 6) `liveswap -u` one a
 *      second: from the moment the command is spawned to the last answer of
 *      the old version, to the first of the new one, and to the command's exit;
 *      and the master's own upgrade time as the command prints it.
 *
 * Targets (issue 18): `liveswap --status` ≤ 2× `node -e 0`; from the start of
 * `liveswap -u` to the last old-version response ≤ 250 ms. Prints markdown
 * tables and writes bench/results/cli.json.
 */
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../test/helpers/net.js';
import { fixture, ROOT } from '../test/helpers/paths.js';
import { runCli, runNode, type CliResult, type MasterProcess } from '../test/helpers/processes.js';
import { cutover, type UpgradeWindow } from './lib/cutover.js';
import { isFailure, LoadGenerator } from './lib/load.js';
import { now } from './lib/load-protocol.js';
import { median, ms, table, writeJson } from './lib/report.js';
import { liveswapMaster } from './lib/servers.js';

const ROUNDS = Number(process.env.BENCH_CLI_ROUNDS ?? 10);
const UPGRADES = Number(process.env.BENCH_CLI_UPGRADES ?? 6);
const CLIENTS = 8;
const WARMUP_MS = 500;
/** Between upgrades: the master boots its spares when an upgrade ends (see zero-drop.ts, TIMING_GAP_MS). */
const GAP_MS = 1000;
const VERSIONS = ['v1', 'v2', 'v3'];

interface Timed {
  ms: number;
  result: CliResult;
}

/** Spawns the CLI with `args` (or, with `node`, this Node with them) and times it from spawn to exit. */
async function timed(args: string[], run = runCli): Promise<Timed> {
  const started = now();
  const result = await run(args);
  return { ms: now() - started, result };
}

const nodeE0 = (): Promise<Timed> => timed(['-e', '0'], runNode);

function mustSucceed(what: string, run: Timed): number {
  if (run.result.code !== 0) throw new Error(`${what} failed (exit ${run.result.code}): ${run.result.stderr}`);
  return run.ms;
}

/** The master's own upgrade time, as `liveswap -u` prints it. */
function upgradeMs(run: Timed): number {
  return Number(/ in (\d+) ms:/.exec(run.result.stdout)?.[1] ?? NaN);
}

// --- 1. round trips ---------------------------------------------------------

async function roundTrips(master: MasterProcess) {
  const commands: Record<string, () => Promise<Timed>> = {
    'node -e 0': nodeE0,
    'liveswap --status': () => timed(['--status', ...master.via]),
    'liveswap -m hello': () => timed(['-m', 'hello', ...master.via]),
  };
  let version = 0;
  const upgrade = async () => {
    version = (version + 1) % VERSIONS.length;
    const run = await timed(['-u', fixture(`${VERSIONS[version]}.js`), ...master.via]);
    await sleep(GAP_MS);
    return run;
  };
  const times: Record<string, number[]> = Object.fromEntries([...Object.keys(commands), 'liveswap -u'].map((name) => [name, []]));
  const masterUpgradeMs: number[] = [];
  for (let round = -1; round < ROUNDS; round++) {
    for (const [name, run] of Object.entries(commands)) {
      const elapsed = mustSucceed(name, await run());
      if (round >= 0) times[name]!.push(elapsed);
    }
    const run = await upgrade();
    if (round >= 0) {
      times['liveswap -u']!.push(mustSucceed('liveswap -u', run));
      masterUpgradeMs.push(upgradeMs(run));
    }
  }
  const base = times['node -e 0']!;
  const rows = Object.entries(times).map(([command, values]) => ({
    command,
    runs: values.length,
    'median ms': ms(median(values)),
    'min–max ms': `${ms(Math.min(...values))}–${ms(Math.max(...values))}`,
    '× node -e 0': median(values.map((v, i) => v / base[i]!)).toFixed(2),
  }));
  rows.find((r) => r.command === 'liveswap -u')!.command += ` (master's upgrade: median ${ms(median(masterUpgradeMs))} ms)`;
  return { rows, times, masterUpgradeMs };
}

// --- 2. a deploy from the shell under load ------------------------------------

async function deployUnderLoad() {
  const port = await freePort();
  const master = await liveswapMaster(2, port);
  const load = new LoadGenerator();
  const windows: (UpgradeWindow & { exitMs: number; masterMs: number })[] = [];
  let requests: Awaited<ReturnType<LoadGenerator['stop']>> = [];
  try {
    load.start({ port, clients: CLIENTS, keepAlive: true });
    await sleep(WARMUP_MS);
    for (let u = 0; u < UPGRADES; u++) {
      const from = VERSIONS[u % 3]!;
      const to = VERSIONS[(u + 1) % 3]!;
      const startedAt = now();
      const run = await timed(['-u', fixture(`${to}.js`), ...master.via]);
      mustSucceed('liveswap -u', run);
      windows.push({ from, to, startedAt, returnedAt: now(), firstNewMs: NaN, lastOldMs: NaN, exitMs: run.ms, masterMs: upgradeMs(run) });
      await sleep(GAP_MS);
    }
  } finally {
    requests = await load.stop();
    await load.close();
    await master.stop();
  }
  const rows = windows.map((w, i) => {
    const until = windows[i + 1]?.startedAt ?? Infinity;
    Object.assign(w, cutover(requests, w, until));
    const inWindow = requests.filter((r) => r.sentAt >= w.startedAt && r.sentAt < until);
    return {
      upgrade: `${w.from} → ${w.to}`,
      'last old ms': ms(w.lastOldMs),
      'first new ms': ms(w.firstNewMs),
      'command exit ms': ms(w.exitMs),
      "master's upgrade ms": ms(w.masterMs),
      requests: inWindow.length,
      failed: inWindow.filter(isFailure).length,
    };
  });
  return { rows, windows, failed: requests.filter(isFailure).length };
}

// --- main -------------------------------------------------------------------

async function main() {
  const began = Date.now();
  console.log(
    `liveswap CLI benchmark — node ${process.version}, ${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? ''}, load average ${os.loadavg()[0]!.toFixed(1)}`,
  );
  const master = await liveswapMaster(2, await freePort());
  let trips: Awaited<ReturnType<typeof roundTrips>>;
  try {
    trips = await roundTrips(master);
  } finally {
    await master.stop();
  }
  console.log(`\n### Round trips against a master with 2 workers (unix socket), ${ROUNDS} rounds after one warm-up\n\n${table(trips.rows)}`);

  const deploy = await deployUnderLoad();
  console.log(`\n### \`liveswap -u\` under keep-alive load (2 workers, small app, ${CLIENTS} clients), times from the command's spawn\n\n${table(deploy.rows)}`);

  const statusRatio = median(trips.times['liveswap --status']!.map((v, i) => v / trips.times['node -e 0']![i]!));
  const lastOld = deploy.windows.map((w) => w.lastOldMs);
  const targets = [
    { target: '`liveswap --status` ≤ 2× `node -e 0`', measured: `${statusRatio.toFixed(2)}× (median over rounds)`, met: statusRatio <= 2 },
    {
      target: 'start of `liveswap -u` → last old-version response ≤ 250 ms',
      measured: `median ${ms(median(lastOld))} ms, max ${ms(Math.max(...lastOld))} ms`,
      met: Math.max(...lastOld) <= 250,
    },
    { target: '0 failed requests during the upgrades', measured: `${deploy.failed} failed`, met: deploy.failed === 0 },
  ].map((t) => ({ ...t, met: t.met ? 'yes' : 'NO' }));
  console.log(`\n### Targets\n\n${table(targets)}\n\n(${Math.round((Date.now() - began) / 1000)} s)`);

  const file = writeJson(path.join(ROOT, 'bench', 'results'), `cli-node${process.versions.node.split('.')[0]}.json`, {
    node: process.version,
    cores: os.availableParallelism(),
    loadAverage: os.loadavg(),
    date: new Date().toISOString(),
    roundTrips: trips,
    deploy,
    targets,
  });
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

await main();
