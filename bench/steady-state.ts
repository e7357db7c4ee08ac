/**
 * Steady state: req/s of liveswap against plain node:cluster, same app, same
 * worker count, measured in the same run.
 *
 * This VM's throughput for one unchanged setup drifts by 30% and more over
 * seconds to minutes (pure CPU loops do not; loopback traffic between
 * processes on two vCPUs does), and a server needs seconds of traffic before
 * V8 has warmed it. So the method is:
 *   - every server is warmed up before any round counts: a fresh server's
 *     req/s climbs for 4 s (2 workers) to 10 s (8 workers) before it levels
 *     off here (JIT, and the VM populating the new processes' memory), so it
 *     gets load until its rate stops climbing;
 *   - one load generator process for all rounds (its JIT stays warm), with the
 *     lean raw-http engine so that the servers, not the generator, set the rate;
 *   - short rounds, the servers taking turns in every order (so each is
 *     measured before and after each other equally often), and the ratio is
 *     the median of the rounds' ratios: neighbouring rounds see nearly the
 *     same machine, so a round's ratio cancels most of the drift;
 *   - every process pinned to a CPU, the same way for every server: the load
 *     generator and the master or primary on CPU 0 and CPU 1, the workers
 *     alternating between them. Left to the scheduler, where each long-lived
 *     process happened to land stuck for the whole run, and two identical
 *     primaries measured 0.89–1.11 of each other with connection-close
 *     clients; pinned, 0.97–1.00;
 *   - a control: a second, identical plain node:cluster primary measured the
 *     same way. Its ratio to the first is what the method reads when there is
 *     no difference at all: the noise floor of this run.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../test/helpers/net.js';
import { childPids } from '../test/helpers/proc-tree.js';
import { answeredAt, isFailure, LoadGenerator } from './lib/load.js';
import { now } from './lib/load-protocol.js';
import { cpuMsOfTree, pinToCpu } from './lib/proc.js';
import { median, medianInterval, percentile } from './lib/report.js';
import { liveswapMaster, plainCluster } from './lib/servers.js';

/** Warm-up: 1 s windows until the rate stops climbing (see warmUp), within these bounds. */
const WARMUP_MIN_WINDOWS = 3;
const WARMUP_MAX_WINDOWS = 15;
/** Each round: connections opened and settled, then the measured window. */
const SETTLE_MS = 200;
export const STEADY_MEASURE_MS = 1000;
/** A multiple of 6: the three servers take every order equally often. */
export const STEADY_ROUNDS = Number(process.env.BENCH_STEADY_ROUNDS ?? 18);

const SERVERS = ['plain', 'liveswap', 'control'] as const;
type Server = (typeof SERVERS)[number];
const ORDERS: readonly (readonly Server[])[] = [
  ['plain', 'liveswap', 'control'],
  ['control', 'liveswap', 'plain'],
  ['liveswap', 'plain', 'control'],
  ['control', 'plain', 'liveswap'],
  ['plain', 'control', 'liveswap'],
  ['liveswap', 'control', 'plain'],
];

interface Measured {
  rps: number;
  /** Server-side CPU (master or primary, and its workers) per 1000 requests, ms. */
  cpuPerK: number;
}

async function measureRound(load: LoadGenerator, port: number, serverPid: number, keepAlive: boolean, clients: number, windowMs: number): Promise<Measured> {
  load.start({ port, clients, keepAlive, engine: 'raw', staggered: true });
  await sleep(SETTLE_MS);
  const from = now();
  const cpuFrom = cpuMsOfTree(serverPid);
  await sleep(windowMs);
  const cpuTo = cpuMsOfTree(serverPid);
  const to = now();
  const requests = await load.stop();
  const answered = requests.filter((r) => !isFailure(r) && answeredAt(r) >= from && answeredAt(r) < to).length;
  return { rps: answered / ((to - from) / 1000), cpuPerK: ((cpuTo - cpuFrom) / answered) * 1000 };
}

/** Load in 1 s windows until two windows in a row set no new high (by more than 3%). */
async function warmUp(load: LoadGenerator, port: number, serverPid: number, keepAlive: boolean, clients: number): Promise<number> {
  let best = 0;
  let flat = 0;
  let windows = 0;
  while (windows < WARMUP_MAX_WINDOWS && (windows < WARMUP_MIN_WINDOWS || flat < 2)) {
    const { rps } = await measureRound(load, port, serverPid, keepAlive, clients, 1000);
    windows++;
    if (rps > best * 1.03) flat = 0;
    else flat++;
    best = Math.max(best, rps);
  }
  return windows;
}

const intervalText = ([low, high]: [number, number]) => `${low.toFixed(3)}–${high.toFixed(3)}`;
/** A median with its 90% interval: `0.994 (0.953–1.006)`. */
export const withInterval = (value: number, interval: [number, number]) => `${value.toFixed(3)} (${intervalText(interval)})`;
const ratioText = (ratios: number[], interval: [number, number]) =>
  `${median(ratios).toFixed(3)} (${intervalText(interval)}; IQR ${percentile(ratios, 25).toFixed(3)}–${percentile(ratios, 75).toFixed(3)})`;
const rateText = (rates: number[]) => `${Math.round(median(rates))} (${Math.round(Math.min(...rates))}–${Math.round(Math.max(...rates))})`;

/** The generator on CPU 0, each server's master or primary on CPU 1, its other processes alternating. */
function pinAll(generatorPid: number, serverPids: number[]): boolean {
  let pinned = pinToCpu(generatorPid, 0);
  for (const pid of serverPids) {
    pinned = pinToCpu(pid, 1) && pinned;
    for (const [i, child] of childPids(pid).entries()) pinned = pinToCpu(child, i % 2) && pinned;
  }
  return pinned;
}

export interface SteadyRow {
  workers: number;
  clients: string;
  /** Median of the rounds' liveswap / plain ratios. */
  ratio: number;
  /** The same for the control (plain / plain): what "no difference" reads as in this run. */
  controlRatio: number;
  /** 90% bootstrap intervals of the two medians: how far chance alone could move them in this run. */
  ratioInterval: [number, number];
  controlInterval: [number, number];
  /** Every round's figures, in the order measured (for the JSON). */
  rounds: Record<Server, Measured>[];
  row: Record<string, string | number>;
}

export async function steadyState(forks: number, clients: number): Promise<SteadyRow[]> {
  const ports = { plain: await freePort(), liveswap: await freePort(), control: await freePort() };
  const plain = await plainCluster(forks, ports.plain);
  const control = await plainCluster(forks, ports.control);
  const master = await liveswapMaster(forks, ports.liveswap);
  const pids: Record<Server, number> = { plain: plain.pid, liveswap: master.pid, control: control.pid };
  const load = new LoadGenerator();
  const pinned = pinAll(load.pid, Object.values(pids));
  const rows: SteadyRow[] = [];
  try {
    for (const keepAlive of [true, false]) {
      const warmUpWindows: number[] = [];
      for (const who of SERVERS) warmUpWindows.push(await warmUp(load, ports[who], pids[who], keepAlive, clients));
      const rounds: Record<Server, Measured>[] = [];
      for (let round = 0; round < STEADY_ROUNDS; round++) {
        const measured = {} as Record<Server, Measured>;
        for (const who of ORDERS[round % ORDERS.length]!) measured[who] = await measureRound(load, ports[who], pids[who], keepAlive, clients, STEADY_MEASURE_MS);
        rounds.push(measured);
        if (process.env.BENCH_VERBOSE) console.error(`steady ${forks} ${keepAlive ? 'keep-alive' : 'close'} round ${round}: ${SERVERS.map((w) => `${w} ${Math.round(measured[w].rps)}`).join(', ')}`);
      }
      const series = (who: Server, key: keyof Measured) => rounds.map((r) => r[who][key]);
      const ratios = rounds.map((r) => r.liveswap.rps / r.plain.rps);
      const controlRatios = rounds.map((r) => r.control.rps / r.plain.rps);
      const cpu = (who: Server) => median(series(who, 'cpuPerK'));
      const ratioInterval = medianInterval(ratios);
      const controlInterval = medianInterval(controlRatios);
      const clientsText = `${clients} ${keepAlive ? 'keep-alive' : 'close'}`;
      rows.push({
        workers: forks,
        clients: clientsText,
        ratio: median(ratios),
        controlRatio: median(controlRatios),
        ratioInterval,
        controlInterval,
        rounds,
        row: {
          workers: forks,
          pinned: pinned ? 'yes' : 'no',
          clients: clientsText,
          'plain req/s (median, min–max)': rateText(series('plain', 'rps')),
          'liveswap req/s': rateText(series('liveswap', 'rps')),
          'liveswap / plain (median; 90% interval of the median; IQR of the rounds)': ratioText(ratios, ratioInterval),
          'control / plain': ratioText(controlRatios, controlInterval),
          'warm-up s': warmUpWindows.join(' / '),
          'server CPU ms per 1000 req, plain / liveswap / control': `${cpu('plain').toFixed(1)} / ${cpu('liveswap').toFixed(1)} / ${cpu('control').toFixed(1)}`,
        },
      });
    }
  } finally {
    await load.close();
    await master.stop();
    await control.stop();
    await plain.stop();
  }
  return rows;
}
