/**
 * Steady state: req/s of liveswap against plain node:cluster, same app, same
 * worker count, measured in the same run.
 *
 * This VM's throughput for one unchanged setup moves between levels as far
 * apart as 25,000 and 45,000 req/s, each lasting from a fifth of a second to
 * a few seconds (steal time from the host comes and goes in episodes), and a
 * server needs seconds of traffic before V8 has warmed it. On top of that,
 * identical servers differ for their whole life. So the method is:
 *   - fresh processes several times over: a row is measured in segments
 *     (STEADY_SEGMENTS), each with a new liveswap master, a new plain primary
 *     and a new control primary, started in a different order each time.
 *     Five plain primaries with 8 workers, started and warmed alike, measured
 *     together under connection-close clients, read 0.94–1.05 of the others
 *     for as long as they ran (server CPU per request ±4%; a run before this
 *     change read one liveswap master at 0.938 and two primaries 4–8% apart).
 *     One liveswap master per run drew one ticket of that lottery; the
 *     segments draw several and the verdict pools them;
 *   - the load generator warmed up first, on a server of its own that is then
 *     stopped: in 4 of 5 runs of that experiment the server warmed first by a
 *     cold generator read 0.76–0.86 of the others for the rest of its life,
 *     whichever server it was;
 *   - then a segment's three servers warm up together, taking turns in the
 *     same slices as the measurement, until none of them still climbs: a
 *     fresh server's req/s climbs for 4 s (2 workers) to 10 s (8 workers) of
 *     load here (JIT, and the VM populating the new processes' memory), and
 *     this way each gets the same traffic at the same time;
 *   - one load generator process for everything, with the lean raw-http
 *     engine so that the servers, not the generator, set the rate;
 *   - the servers take turns in slices of 200 ms with no gap: the same 32
 *     clients drive one server, then the next, each client keeping its
 *     keep-alive socket to every server open (load-generator.ts, rotate), the
 *     three servers in every order, round after round;
 *   - each liveswap slice is compared with the mean of the nearest slice of
 *     a plain primary (either of the two) before it and the nearest after
 *     it, in its own segment: both are within 200–400 ms of it, on nearly the
 *     same machine, and a level change during the three slices falls on both
 *     sides. The ratio is the median of those comparisons, over all segments.
 *     The rounds of 1 s per server this replaced put the servers of a round
 *     up to 2.4 s apart;
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
import { freePort } from '../test/helpers/net.js';
import { childPids } from '../test/helpers/proc-tree.js';
import { LoadGenerator } from './lib/load.js';
import type { RotateCommand, RotateResult } from './lib/load-protocol.js';
import { cpuMsOfTree, pinToCpu } from './lib/proc.js';
import { median, percentile, seededRandom } from './lib/report.js';
import { liveswapMaster, plainCluster } from './lib/servers.js';

export const STEADY_SLICE_MS = 200;
/**
 * A slice's first 50 ms are not counted: the previous server's last answers
 * arrive in them while the clients switch over (with close clients, answers
 * here take 11–15 ms at the median, 30–35 ms at p99 and up to 47 ms).
 */
const GUARD_MS = 50;
/** Segments per row, each with fresh servers. */
export const STEADY_SEGMENTS = Number(process.env.BENCH_STEADY_SEGMENTS ?? 4);
/** Rounds per segment, a multiple of 6 so that the three servers take every order equally often: 4 × 36 rounds, 86 s a row. */
export const STEADY_ROUNDS = Number(process.env.BENCH_STEADY_ROUNDS ?? 36);
/** The load generator's own warm-up for each kind of client, on a server that is not measured: 25 slices, 5 s. */
const GENERATOR_WARMUP_SLICES = 25;
/**
 * A segment's warm-up, in windows of 5 rounds (1 s of load for each server),
 * until two windows in a row in which no server set a new high (by more than
 * 3%), within these bounds.
 */
const WARMUP_ROUNDS_PER_WINDOW = 5;
const WARMUP_MIN_WINDOWS = 3;
const WARMUP_MAX_WINDOWS = 15;

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

interface Slice {
  segment: number;
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

/**
 * A 90% bootstrap interval for the median of every value in `groups` pooled,
 * where the values of a group share something the others do not (here: the
 * processes of one segment). Each resample draws the groups with
 * replacement, then the values within each drawn group, so the interval
 * carries the differences between groups as well as the noise within them;
 * resampling the pooled values alone would treat some 140 comparisons of three
 * processes as that many independent draws. Seeded.
 */
export function groupedMedianInterval(groups: readonly (readonly number[])[], resamples = 2000): [number, number] {
  const nonEmpty = groups.filter((g) => g.length > 0);
  if (nonEmpty.length === 0) return [NaN, NaN];
  const random = seededRandom(0x5eed);
  const pick = <T>(from: readonly T[]) => from[Math.floor(random() * from.length)]!;
  const medians: number[] = [];
  for (let i = 0; i < resamples; i++) {
    const pooled = nonEmpty.flatMap(() => {
      const group = pick(nonEmpty);
      return Array.from(group, () => pick(group));
    });
    medians.push(median(pooled));
  }
  return [percentile(medians, 5), percentile(medians, 95)];
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

type Mode = Pick<RotateCommand, 'clients' | 'keepAlive'>;
const rotation = (ports: readonly number[], schedule: number[], { clients, keepAlive }: Mode): RotateCommand => ({
  ports: [...ports],
  schedule,
  sliceMs: STEADY_SLICE_MS,
  guardMs: GUARD_MS,
  clients,
  keepAlive,
  path: '/',
  timeoutMs: 10_000,
});
/** `rounds` rounds of the three servers, cycling through every order. */
const roundsOf = (rounds: number) => Array.from({ length: rounds }, (_, round) => ORDERS[round % ORDERS.length]!.map((s) => SERVERS.indexOf(s))).flat();

/** The load generator's code paths for this kind of client, warmed on a 2-worker primary of its own, which is then stopped. */
async function warmGenerator(load: LoadGenerator, mode: Mode): Promise<void> {
  const port = await freePort();
  const scratch = await plainCluster(2, port);
  try {
    await load.rotate(rotation([port], Array<number>(GENERATOR_WARMUP_SLICES).fill(0), mode));
  } finally {
    await scratch.stop();
  }
}

/** The three servers warmed together, until none of them sets a new high; how many seconds of load each had. */
async function warmUp(load: LoadGenerator, ports: readonly number[], mode: Mode): Promise<number> {
  const best = ports.map(() => 0);
  let flat = 0;
  let windows = 0;
  while (windows < WARMUP_MAX_WINDOWS && (windows < WARMUP_MIN_WINDOWS || flat < 2)) {
    const { slices } = await load.rotate(rotation(ports, roundsOf(WARMUP_ROUNDS_PER_WINDOW), mode));
    windows++;
    const rates = ports.map((_, i) => median(slices.filter((s) => s.server === i).map((s) => s.rps)));
    if (rates.some((rps, i) => rps > best[i]! * 1.03)) flat = 0;
    else flat++;
    rates.forEach((rps, i) => (best[i] = Math.max(best[i]!, rps)));
  }
  return (windows * WARMUP_ROUNDS_PER_WINDOW * STEADY_SLICE_MS) / 1000;
}

/** One segment's measurement of one kind of client. */
interface SegmentRun {
  result: RotateResult;
  /** Server CPU time (master or primary and every child) during the rotation, ms, in SERVERS order. */
  cpuMs: number[];
  warmUpSeconds: number;
}

/** Fresh servers, started in `startOrder`, each kind of client measured on them in turn. */
async function segment(load: LoadGenerator, forks: number, modes: readonly Mode[], startOrder: readonly Server[]): Promise<{ runs: SegmentRun[]; pinned: boolean }> {
  const ports = { plain: await freePort(), liveswap: await freePort(), control: await freePort() };
  const servers: Partial<Record<Server, { pid: number; stop(): Promise<void> }>> = {};
  try {
    for (const who of startOrder) servers[who] = who === 'liveswap' ? await liveswapMaster(forks, ports[who]) : await plainCluster(forks, ports[who]);
    const pids = SERVERS.map((who) => servers[who]!.pid);
    const pinned = pinAll(load.pid, pids);
    const portList = SERVERS.map((who) => ports[who]);
    const runs: SegmentRun[] = [];
    for (const mode of modes) {
      const warmUpSeconds = await warmUp(load, portList, mode);
      const cpuFrom = pids.map(cpuMsOfTree);
      const result = await load.rotate(rotation(portList, roundsOf(STEADY_ROUNDS), mode));
      runs.push({ result, cpuMs: pids.map((pid, i) => cpuMsOfTree(pid) - cpuFrom[i]!), warmUpSeconds });
    }
    return { runs, pinned };
  } finally {
    for (const who of SERVERS) await servers[who]?.stop();
  }
}

export interface SteadyRow {
  workers: number;
  clients: string;
  /** Median of liveswap's slices against the plain primaries' slices on either side, every segment pooled. */
  ratio: number;
  /** The same for the control against the first plain primary's slices: what "no difference" reads as in this run. */
  controlRatio: number;
  /** 90% bootstrap intervals of the two medians (segments and comparisons resampled): how far chance alone could move them in this run. */
  ratioInterval: [number, number];
  controlInterval: [number, number];
  /** Requests that failed, in a slice or opening its socket (a steady server should fail none). */
  failed: number;
  /** Every slice, in the order measured (for the JSON). */
  slices: Slice[];
  row: Record<string, string | number>;
}

export async function steadyState(forks: number, clients: number): Promise<SteadyRow[]> {
  const modes: Mode[] = [
    { clients, keepAlive: true },
    { clients, keepAlive: false },
  ];
  const load = new LoadGenerator();
  const segments: SegmentRun[][] = [];
  let pinned = true;
  try {
    for (const mode of modes) await warmGenerator(load, mode);
    for (let k = 0; k < STEADY_SEGMENTS; k++) {
      // A different start order each segment: no kind of server always starts first or last.
      const run = await segment(load, forks, modes, ORDERS[k % ORDERS.length]!);
      segments.push(run.runs);
      pinned &&= run.pinned;
    }
  } finally {
    await load.close();
  }
  return modes.map((mode, m) => steadyRow(forks, mode, pinned, segments.map((runs) => runs[m]!)));
}

function steadyRow(forks: number, { clients, keepAlive }: Mode, pinned: boolean, runs: SegmentRun[]): SteadyRow {
  const slicesOf = (run: SegmentRun, segment: number) => run.result.slices.map(({ server, rps, failed }): Slice => ({ segment, server: SERVERS[server]!, rps, failed }));
  const bySegment = runs.map(slicesOf);
  const slices = bySegment.flat();
  const ratioGroups = bySegment.map((segmentSlices) => bracketedRatios(segmentSlices, 'liveswap', ['plain', 'control']));
  const controlGroups = bySegment.map((segmentSlices) => bracketedRatios(segmentSlices, 'control', ['plain']));
  const ratios = ratioGroups.flat();
  const controlRatios = controlGroups.flat();
  const ratioInterval = groupedMedianInterval(ratioGroups);
  const controlInterval = groupedMedianInterval(controlGroups);
  const rates = (who: Server) => slices.filter((s) => s.server === who).map((s) => s.rps);
  const cpuPerK = SERVERS.map((_, i) => {
    const ms = runs.reduce((sum, run) => sum + run.cpuMs[i]!, 0);
    const answered = runs.reduce((sum, run) => sum + run.result.answeredByServer[i]!, 0);
    return (ms / answered) * 1000;
  });
  const failed = runs.reduce((sum, run) => sum + run.result.openingFailures, 0) + slices.reduce((sum, s) => sum + s.failed, 0);
  const clientsText = `${clients} ${keepAlive ? 'keep-alive' : 'close'}`;
  const perSegment = (groups: number[][]) => groups.map((g) => median(g).toFixed(3)).join(', ');
  if (process.env.BENCH_VERBOSE) console.error(`steady ${forks} ${clientsText}: segments ${perSegment(ratioGroups)}; control ${perSegment(controlGroups)}`);
  return {
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
      // The lottery between processes: each segment's own median, liveswap then control.
      'each segment, liveswap; control': `${perSegment(ratioGroups)}; ${perSegment(controlGroups)}`,
      failed,
      'warm-up s of load per server, each segment': runs.map((run) => run.warmUpSeconds).join(' / '),
      'server CPU ms per 1000 req, plain / liveswap / control': cpuPerK.map((v) => v.toFixed(1)).join(' / '),
    },
  };
}
