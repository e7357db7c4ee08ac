/**
 * Steady state: req/s of liveswap against plain node:cluster, same app, same
 * worker count, measured in the same run.
 *
 * This VM's throughput for one unchanged setup moves between levels as far
 * apart as 25,000 and 45,000 req/s, each lasting from a fifth of a second to
 * a few seconds (steal time from the host comes and goes in episodes), and a
 * server needs seconds of traffic before V8 has warmed it. So the method is:
 *   - every server is warmed up before anything counts: a fresh server's
 *     req/s climbs for 4 s (2 workers) to 10 s (8 workers) before it levels
 *     off here (JIT, and the VM populating the new processes' memory), so it
 *     gets load until its rate stops climbing;
 *   - one load generator process for everything (its JIT stays warm), with
 *     the lean raw-http engine so that the servers, not the generator, set the
 *     rate;
 *   - the servers take turns in slices of 200 ms with no gap: the same 32
 *     clients drive one server, then the next, each client keeping its
 *     keep-alive socket to every server open (load-generator.ts, rotate), the
 *     three servers in every order, round after round;
 *   - each liveswap slice is compared with the mean of the nearest slice of
 *     a plain primary (either of the two) before it and the nearest after
 *     it: both are within 200–400 ms of it, on nearly the same machine, and
 *     a level change during the three slices falls on both sides. The ratio
 *     is the median of those comparisons.
 *     The rounds of 1 s per server this replaced put the servers of a round
 *     up to 2.4 s apart: 18 of them (65 s a row) gave 90% intervals 0.04–0.16
 *     wide (median 0.083, or 0.070 scaled to 90 s); 150 rounds of slices
 *     (90 s a row) give 0.03–0.08 (median 0.048);
 *   - every process pinned to a CPU, the same way for every server: the load
 *     generator and the master or primary on CPU 0 and CPU 1, the workers
 *     alternating between them. Left to the scheduler, where each long-lived
 *     process happened to land stuck for the whole run, and two identical
 *     primaries measured 0.89–1.11 of each other with connection-close
 *     clients; pinned, 0.97–1.00;
 *   - a control: a second, identical plain node:cluster primary, measured the
 *     same way against the first one's slices on either side. Its ratio is
 *     what the method reads when there is no difference at all: the noise
 *     floor of this run (a little wider than the ratio's, since it has one
 *     plain primary to compare with rather than two).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../test/helpers/net.js';
import { childPids } from '../test/helpers/proc-tree.js';
import { answeredAt, isFailure, LoadGenerator } from './lib/load.js';
import { now, type SliceResult } from './lib/load-protocol.js';
import { cpuMsOfTree, pinToCpu } from './lib/proc.js';
import { median, medianInterval, percentile } from './lib/report.js';
import { liveswapMaster, plainCluster } from './lib/servers.js';

/** Warm-up: 1 s windows until the rate stops climbing (see warmUp), within these bounds. */
const WARMUP_MIN_WINDOWS = 3;
const WARMUP_MAX_WINDOWS = 15;
/** Warm-up windows: connections opened and settled, then the measured second. */
const SETTLE_MS = 200;
export const STEADY_SLICE_MS = 200;
/**
 * A slice's first 50 ms are not counted: the previous server's last answers
 * arrive in them while the clients switch over (with close clients, answers
 * here take 11–15 ms at the median, 30–35 ms at p99 and up to 47 ms).
 */
const GUARD_MS = 50;
/** A multiple of 6: the three servers take every order equally often. 150 rounds: 90 s per row. */
export const STEADY_ROUNDS = Number(process.env.BENCH_STEADY_ROUNDS ?? 150);

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

/** One window of load on one server; its req/s. */
async function measureWindow(load: LoadGenerator, port: number, keepAlive: boolean, clients: number, windowMs: number): Promise<number> {
  load.start({ port, clients, keepAlive, engine: 'raw', staggered: true });
  await sleep(SETTLE_MS);
  const from = now();
  await sleep(windowMs);
  const to = now();
  const requests = await load.stop();
  const answered = requests.filter((r) => !isFailure(r) && answeredAt(r) >= from && answeredAt(r) < to).length;
  return answered / ((to - from) / 1000);
}

/** Load in 1 s windows until two windows in a row set no new high (by more than 3%). */
async function warmUp(load: LoadGenerator, port: number, keepAlive: boolean, clients: number): Promise<number> {
  let best = 0;
  let flat = 0;
  let windows = 0;
  while (windows < WARMUP_MAX_WINDOWS && (windows < WARMUP_MIN_WINDOWS || flat < 2)) {
    const rps = await measureWindow(load, port, keepAlive, clients, 1000);
    windows++;
    if (rps > best * 1.03) flat = 0;
    else flat++;
    best = Math.max(best, rps);
  }
  return windows;
}

interface Slice {
  server: Server;
  rps: number;
  failed: number;
}

/**
 * Each slice of `who`, divided by the mean of the nearest slice before it and
 * the nearest after it that belong to `against` (slices at either end of the
 * run, with no such neighbour on one side, are left out).
 */
export function bracketedRatios<S>(slices: readonly { server: S; rps: number }[], who: S, against: readonly S[]): number[] {
  const nearest = (from: number, step: 1 | -1) => {
    for (let i = from + step; i >= 0 && i < slices.length; i += step) if (against.includes(slices[i]!.server)) return slices[i]!.rps;
    return undefined;
  };
  const ratios: number[] = [];
  slices.forEach((slice, i) => {
    if (slice.server !== who) return;
    const before = nearest(i, -1);
    const after = nearest(i, 1);
    if (before !== undefined && after !== undefined) ratios.push(slice.rps / ((before + after) / 2));
  });
  return ratios;
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
  /** Median of liveswap's slices against the plain primaries' slices on either side. */
  ratio: number;
  /** The same for the control against the first plain primary's slices: what "no difference" reads as in this run. */
  controlRatio: number;
  /** 90% bootstrap intervals of the two medians: how far chance alone could move them in this run. */
  ratioInterval: [number, number];
  controlInterval: [number, number];
  /** Requests that failed, in a slice or opening its socket (a steady server should fail none). */
  failed: number;
  /** Every slice, in the order measured (for the JSON). */
  slices: Slice[];
  row: Record<string, string | number>;
}

export async function steadyState(forks: number, clients: number): Promise<SteadyRow[]> {
  const ports = { plain: await freePort(), liveswap: await freePort(), control: await freePort() };
  // liveswap is started between the two primaries it is compared with. Three identical plain
  // primaries started one after another (8 workers, close clients) read 0.987, 0.995 and 1.010 of
  // the others in one run, 0.985, 0.966 and 1.069 in another (CPU per 1000 requests 344.7, 340.6,
  // 314.3 ms): differences between processes that last a run, with no consistent winner. Started
  // last, as it was, liveswap would take whatever the last place brings; in the middle, a trend
  // with start order cancels in the mean of the two primaries, and nothing else is made worse.
  const plain = await plainCluster(forks, ports.plain);
  const master = await liveswapMaster(forks, ports.liveswap);
  const control = await plainCluster(forks, ports.control);
  const pids: Record<Server, number> = { plain: plain.pid, liveswap: master.pid, control: control.pid };
  const load = new LoadGenerator();
  const pinned = pinAll(load.pid, Object.values(pids));
  const rows: SteadyRow[] = [];
  try {
    for (const keepAlive of [true, false]) {
      const warmUpWindows: number[] = [];
      for (const who of SERVERS) warmUpWindows.push(await warmUp(load, ports[who], keepAlive, clients));
      const schedule = Array.from({ length: STEADY_ROUNDS }, (_, round) => ORDERS[round % ORDERS.length]!).flat();
      const cpuFrom = SERVERS.map((who) => cpuMsOfTree(pids[who]));
      const result = await load.rotate({
        ports: SERVERS.map((who) => ports[who]),
        schedule: schedule.map((who) => SERVERS.indexOf(who)),
        sliceMs: STEADY_SLICE_MS,
        guardMs: GUARD_MS,
        clients,
        keepAlive,
        path: '/',
        timeoutMs: 10_000,
      });
      const cpuPerK = SERVERS.map((who, i) => ((cpuMsOfTree(pids[who]) - cpuFrom[i]!) / result.answeredByServer[i]!) * 1000);
      const slices = result.slices.map(({ server, rps, failed }: SliceResult): Slice => ({ server: SERVERS[server]!, rps, failed }));
      const rates = (who: Server) => slices.filter((s) => s.server === who).map((s) => s.rps);
      const ratios = bracketedRatios(slices, 'liveswap', ['plain', 'control']);
      const controlRatios = bracketedRatios(slices, 'control', ['plain']);
      const ratioInterval = medianInterval(ratios);
      const controlInterval = medianInterval(controlRatios);
      const failed = result.openingFailures + slices.reduce((sum, s) => sum + s.failed, 0);
      const clientsText = `${clients} ${keepAlive ? 'keep-alive' : 'close'}`;
      if (process.env.BENCH_VERBOSE) console.error(`steady ${forks} ${clientsText}: ${SERVERS.map((w) => `${w} ${Math.round(median(rates(w)))}`).join(', ')}`);
      rows.push({
        workers: forks,
        clients: clientsText,
        ratio: median(ratios),
        controlRatio: median(controlRatios),
        ratioInterval,
        controlInterval,
        failed,
        slices,
        row: {
          workers: forks,
          pinned: pinned ? 'yes' : 'no',
          clients: clientsText,
          'plain req/s per slice (median, min–max)': rateText(rates('plain')),
          'liveswap req/s': rateText(rates('liveswap')),
          'liveswap / plain on either side (median; 90% interval of the median; IQR)': ratioText(ratios, ratioInterval),
          'control / plain': ratioText(controlRatios, controlInterval),
          // How much the verdict leans on averaging the two primaries: a gap between two identical processes can last a whole run.
          'liveswap against each primary alone, plain / control': `${median(bracketedRatios(slices, 'liveswap', ['plain'])).toFixed(3)} / ${median(bracketedRatios(slices, 'liveswap', ['control'])).toFixed(3)}`,
          failed,
          'warm-up s': warmUpWindows.join(' / '),
          'server CPU ms per 1000 req, plain / liveswap / control': cpuPerK.map((v) => v.toFixed(1)).join(' / '),
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
