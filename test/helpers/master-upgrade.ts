/**
 * The issue-22 scenario, shared by test/upgrade-master.test.ts and the
 * bench's "master" phase: a master under 32 keep-alive and 32
 * connection-close clients with 8 slow requests in flight and a control
 * client calling all along (each call with a 1 s deadline), replaced with
 * `liveswap --upgrade-master --node <another Node line>`.
 */
import { connect, LiveswapClientError, type GetStatusResponse } from '../../src/client/index.js';
import type { LoadStats } from './load.js';
import { freePort, get, startLoad } from './net.js';
import { nodeOfAnotherLine } from './node-lines.js';
import { fixture } from './paths.js';
import { runCli, startMaster, type CliResult, type MasterProcess } from './processes.js';
import { expectGone, waitFor, withDeadline } from './wait.js';

export const SLOW_REQUESTS = 8;
export const SLOW_MS = 3000;
/** Every control call must be answered within this (a deadline per call, not a measured gap). */
export const CONTROL_DEADLINE_MS = 1000;

export interface MasterUpgradeRun {
  master: MasterProcess;
  other: { path: string; version: string };
  before: GetStatusResponse;
  after: GetStatusResponse;
  cli: CliResult;
  /** From the CLI call to its exit. */
  cliMs: number;
  stats: LoadStats;
  slowAnswered: number;
  slowReplies: string[];
  control: { ok: number; failed: string[] };
  /** How the old master's WatchWorkers stream ended. */
  watchEnd: LiveswapClientError | string;
}

export async function masterUpgradeUnderLoad(t: { after(fn: () => Promise<void>): void }): Promise<MasterUpgradeRun> {
  const other = nodeOfAnotherLine();
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { tcp: true, forks: 2, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  const before = await master.client.status();

  const load = startLoad(port, { keepAlive: 32, close: 32 });
  const slow = Array.from({ length: SLOW_REQUESTS }, (_, i) => get(port, `/slow?ms=${SLOW_MS}&tag=${i}`, false, SLOW_MS + 10_000));
  await waitFor('the slow requests to reach the workers', () => (master.stdout().match(/slow request \d+ started/g)?.length ?? 0) >= SLOW_REQUESTS);

  const probe = connect({ port: master.port, deadlineMs: CONTROL_DEADLINE_MS });
  let probing = true;
  const control = { ok: 0, failed: [] as string[] };
  const probing$ = (async () => {
    while (probing) await probe.status().then(() => control.ok++, (error: Error) => control.failed.push(error.message));
  })();
  const watcher = connect({ port: master.port });
  const watched = (async (): Promise<LiveswapClientError | string> => {
    try {
      for await (const item of watcher.watch()) void item;
      return 'ended without a status';
    } catch (error) {
      return error as LiveswapClientError;
    }
  })();

  const calledAt = Date.now();
  const cli = await runCli(['--upgrade-master', '--node', other.path, '-p', String(master.port)], { timeoutMs: 60_000 });
  const cliMs = Date.now() - calledAt;
  const settled = await Promise.allSettled(slow);
  const slowReplies = settled.map((r) => (r.status === 'fulfilled' ? r.value.body : String(r.reason)));
  await expectGone(before.workers.map((w) => w.pid));
  // Requests sent after the old workers left: they all reach the new master's.
  await waitFor('requests served after the old workers left', () => load.peek().length > 0 && load.peek().at(-1)!.sentAt > Date.now() - 200);
  const stats = await load.stop();
  probing = false;
  await probing$;
  probe.close();
  const watchEnd = await withDeadline('the watcher to be told', watched, 10_000);
  watcher.close();
  const after = await master.client.status();
  return {
    master,
    other,
    before,
    after,
    cli,
    cliMs,
    stats,
    slowAnswered: slowReplies.filter((body) => body === 'v1').length,
    slowReplies,
    control,
    watchEnd,
  };
}
