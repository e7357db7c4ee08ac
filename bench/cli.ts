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
 *      command's time divided by `node -e 0`'s in the same round; the same for
 *      each process's CPU time (exitedChildrenCpuMs), which on a shared
 *      machine does not count the time spent waiting for a core.
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
import { CLI, fixture, ROOT } from '../test/helpers/paths.js';
import { runNode, type CliResult, type MasterProcess } from '../test/helpers/processes.js';
import { cutover, type UpgradeWindow } from './lib/cutover.js';
import { isFailure, LoadGenerator } from './lib/load.js';
import { now } from './lib/load-protocol.js';
import { exitedChildrenCpuMs } from './lib/proc.js';
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
  /** The process's CPU time (user + system; 10 ms steps). */
  cpuMs: number;
  result: CliResult;
}

/** Spawns the CLI with `args` (`node: true`: `node args`) and times it from spawn to exit. */
async function timed(args: string[], { node = false } = {}): Promise<Timed> {
  const cpuBefore = exitedChildrenCpuMs();
  const started = now();
  const result = await runNode(node ? args : [CLI, ...args]);
  return { ms: now() - started, cpuMs: exitedChildrenCpuMs() - cpuBefore, result };
}

const nodeE0 = (): Promise<Timed> => timed(['-e', '0'], { node: true });

function mustSucceed(what: string, run: Timed): Timed {
  if (run.result.code !== 0) throw new Error(`${what} failed (exit ${run.result.code}): ${run.result.stderr}`);
  return run;
}

/** The master's own upgrade time, as `liveswap -u` prints it. */
function upgradeMs(run: Timed): number {
  return Number(/ in (\d+) ms:/.exec(run.result.stdout)?.[1] ?? NaN);
}

/** Each run's value over the same round's `node -e 0`, their median. */
const pairedRatio = (values: readonly number[], base: readonly number[]) => median(values.map((v, i) => v / base[i]!));

// --- 1. round trips ---------------------------------------------------------

async function roundTrips(master: MasterProcess) {
  let version = 0;
  const commands: Record<string, () => Promise<Timed>> = {
    'node -e 0': nodeE0,
    'liveswap --status': () => timed(['--status', ...master.via]),
    'liveswap -m hello': () => timed(['-m', 'hello', ...master.via]),
    'liveswap -u': async () => {
      version = (version + 1) % VERSIONS.length;
      const run = await timed(['-u', fixture(`${VERSIONS[version]}.js`), ...master.via]);
      await sleep(GAP_MS);
      return run;
    },
  };
  const runs: Record<string, Timed[]> = Object.fromEntries(Object.keys(commands).map((name) => [name, []]));
  for (let round = -1; round < ROUNDS; round++) {
    for (const [name, run] of Object.entries(commands)) {
      const result = mustSucceed(name, await run());
      if (round >= 0) runs[name]!.push(result);
    }
  }
  const wall = (name: string) => runs[name]!.map((r) => r.ms);
  const cpu = (name: string) => runs[name]!.map((r) => r.cpuMs);
  const masterUpgradeMs = runs['liveswap -u']!.map(upgradeMs);
  const rows = Object.keys(commands).map((command) => ({
    command: command === 'liveswap -u' ? `${command} (master's upgrade: median ${ms(median(masterUpgradeMs))} ms)` : command,
    runs: runs[command]!.length,
    'median ms': ms(median(wall(command))),
    'min–max ms': `${ms(Math.min(...wall(command)))}–${ms(Math.max(...wall(command)))}`,
    '× node -e 0': pairedRatio(wall(command), wall('node -e 0')).toFixed(2),
    'CPU median ms': ms(median(cpu(command))),
    'CPU × node -e 0': pairedRatio(cpu(command), cpu('node -e 0')).toFixed(2),
  }));
  const ratio = (command: string) => ({ wall: pairedRatio(wall(command), wall('node -e 0')), cpu: pairedRatio(cpu(command), cpu('node -e 0')) });
  return { rows, wall: Object.fromEntries(Object.keys(commands).map((c) => [c, wall(c)])), cpu: Object.fromEntries(Object.keys(commands).map((c) => [c, cpu(c)])), masterUpgradeMs, statusRatio: ratio('liveswap --status') };
}

// --- 2. a deploy from the shell under load ------------------------------------

async function deployUnderLoad() {
  const port = await freePort();
  const master = await liveswapMaster(2, port);
  const load = new LoadGenerator();
  const windows: (UpgradeWindow & { exitMs: number; cpuMs: number; masterMs: number })[] = [];
  let requests: Awaited<ReturnType<LoadGenerator['stop']>> = [];
  try {
    load.start({ port, clients: CLIENTS, keepAlive: true });
    await sleep(WARMUP_MS);
    for (let u = 0; u < UPGRADES; u++) {
      const from = VERSIONS[u % 3]!;
      const to = VERSIONS[(u + 1) % 3]!;
      const startedAt = now();
      const run = mustSucceed('liveswap -u', await timed(['-u', fixture(`${to}.js`), ...master.via]));
      windows.push({ from, to, startedAt, returnedAt: now(), firstNewMs: NaN, lastOldMs: NaN, exitMs: run.ms, cpuMs: run.cpuMs, masterMs: upgradeMs(run) });
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
      'command CPU ms': ms(w.cpuMs),
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
  // Extra CA certificates are read at every Node start (about 40 ms here): the
  // same for `node -e 0` and the CLI, so they would flatter the ratio.
  const extraCaCerts = process.env.NODE_EXTRA_CA_CERTS;
  delete process.env.NODE_EXTRA_CA_CERTS;
  console.log(
    `liveswap CLI benchmark — node ${process.version}, ${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? ''}, load average ${os.loadavg()[0]!.toFixed(1)}${extraCaCerts ? '; NODE_EXTRA_CA_CERTS unset for the commands measured' : ''}`,
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

  const { statusRatio } = trips;
  const lastOld = deploy.windows.map((w) => w.lastOldMs);
  const targets = [
    {
      target: '`liveswap --status` ≤ 2× `node -e 0`',
      measured: `${statusRatio.wall.toFixed(3)}× wall time (CPU time: ${statusRatio.cpu.toFixed(3)}×), median over rounds`,
      met: statusRatio.wall <= 2,
    },
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
