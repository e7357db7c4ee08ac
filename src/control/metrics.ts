/**
 * Prometheus metrics for one master, and the HTTP endpoint that serves them.
 *
 * Everything is fed from the master's own events (worker transitions, pool
 * exits, upgrade reports, broadcasts) and read at scrape time (counts by
 * state), so no other module calls prom-client. Each master has its own
 * Registry, never the global one: the API can run several masters in one
 * process, and an app embedding liveswap keeps its own metrics to itself.
 *
 * The endpoint is plain, unauthenticated HTTP: bind it to loopback (the
 * default) or to a network only your scraper can reach.
 */
import http from 'node:http';
import net from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '../common/logger.js';
import { listenerHandleOf, listenOn } from './listen.js';
import { capConnections } from './connection-cap.js';
import { HandedOverHttp } from './handed-over-http.js';
import { CONTROL_LIMITS } from './limits.js';
import { RefusalLog } from './refusal-log.js';
import type { ListenHandle } from '../supervisor/listeners.js';
import { ORIGINS } from '../common/origin.js';
import type { BroadcastResult, Master, UpgradeReport } from '../supervisor/master.js';
import type { PoolTransition } from '../supervisor/pool.js';
import type { UpgradeOutcomeName } from '../supervisor/upgrade.js';
import type { ExitInfo, WorkerHandle } from '../supervisor/worker-handle.js';

export const METRICS_PREFIX = 'liveswap_';

export interface MetricsEndpoint {
  address: string;
  /** 0 picks a free port. */
  port: number;
}

const UPGRADE_OUTCOMES: readonly UpgradeOutcomeName[] = ['ok', 'rolled_back', 'vetoed', 'aborted', 'failed'];
const LIVE_STATES = ['starting', 'ready', 'draining'] as const;

/** An upgrade takes a ready wait per worker plus the stability window: from under a second to minutes. */
const UPGRADE_BUCKETS = [0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** An idle worker drains in milliseconds; one with long requests up to the drain timeout (30 s by default). */
const DRAIN_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * The process metrics (CPU, memory, event-loop delay…) describe the process,
 * not a master, and prom-client's event-loop monitor cannot be switched off
 * once started: one registry per process, shared by every master in it, so
 * in-process masters created and closed repeatedly leave nothing running.
 */
let sharedProcessRegistry: Registry | undefined;
function processMetricsRegistry(): Registry {
  if (!sharedProcessRegistry) {
    sharedProcessRegistry = new Registry();
    collectDefaultMetrics({ register: sharedProcessRegistry, prefix: METRICS_PREFIX });
  }
  return sharedProcessRegistry;
}

/** The metrics of one master, in a registry of their own. Call dispose() when the master is gone. */
export class MasterMetrics {
  readonly registry = new Registry();
  private readonly drainingSince = new Map<number, number>();
  private readonly unsubscribe: () => void;
  private readonly processRegistry: Registry | undefined;

  constructor(master: Master, { processMetrics = true }: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const p = METRICS_PREFIX;

    new Gauge({
      name: `${p}workers`,
      help: 'Workers by state (exited workers are gone and not counted).',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = master.pool.counts();
        for (const state of LIVE_STATES) this.set({ state }, counts[state]);
      },
    });
    new Gauge({
      name: `${p}pool_size`,
      help: 'The configured number of workers.',
      registers,
      collect() {
        this.set(master.config.forks);
      },
    });
    new Gauge({
      name: `${p}generation`,
      help: 'The generation of the release now serving (0 before the first start).',
      registers,
      collect() {
        this.set(master.status().generation);
      },
    });
    const restarts = new Counter({
      name: `${p}worker_restarts_total`,
      help: 'Crashed workers respawned by the master (after the crash backoff).',
      registers,
    });
    const crashes = new Counter({
      name: `${p}worker_crashes_total`,
      help: 'Workers that exited without being asked to: a crash, or a release that failed to boot.',
      registers,
    });
    const upgrades = new Counter({
      name: `${p}upgrades_total`,
      help: 'Upgrades that ran, by outcome: ok, rolled_back, vetoed (pre-upgrade hook), aborted (cancelled by Die), failed.',
      labelNames: ['outcome'],
      registers,
    });
    const upgradeSeconds = new Histogram({
      name: `${p}upgrade_duration_seconds`,
      help: 'Upgrade duration by outcome, from the request (hook included) to the end (rollback included).',
      labelNames: ['outcome'],
      buckets: UPGRADE_BUCKETS,
      registers,
    });
    const drainSeconds = new Histogram({
      name: `${p}drain_duration_seconds`,
      help: 'Per drained worker: from the drain request to its exit (killed at the drain timeout included).',
      buckets: DRAIN_BUCKETS,
      registers,
    });
    const drainKills = new Counter({
      name: `${p}drain_timeout_kills_total`,
      help: 'Draining workers killed (SIGKILL) at the drain timeout.',
      registers,
    });
    const broadcasts = new Counter({
      name: `${p}broadcasts_total`,
      help: 'Broadcast calls delivered to at least one worker.',
      registers,
    });
    const deliveries = new Counter({
      name: `${p}broadcast_deliveries_total`,
      help: 'Broadcast messages delivered, one per worker reached.',
      registers,
    });
    const upgradesByOrigin = new Counter({
      name: `${p}upgrades_by_origin_total`,
      help: 'Upgrades that ran, by who asked: rpc (a control call), sighup, follow (the followed path moved), api (in-process).',
      labelNames: ['origin'],
      registers,
    });
    // Every outcome and origin is present from the first scrape, so rate() and alerts see a 0, not a gap.
    for (const outcome of UPGRADE_OUTCOMES) upgrades.inc({ outcome }, 0);
    for (const origin of ORIGINS) upgradesByOrigin.inc({ origin }, 0);

    this.processRegistry = processMetrics ? processMetricsRegistry() : undefined;

    const onTransition = ({ worker, from, to, time }: PoolTransition) => {
      // Only the master's crash respawn passes a restart count to a new worker.
      if (from === undefined && worker.restarts > 0) restarts.inc();
      if (to === 'draining') this.drainingSince.set(worker.id, time.getTime());
    };
    const onExit = (worker: WorkerHandle, info: ExitInfo) => {
      if (!info.expected) crashes.inc();
      if (worker.killedAtDrainTimeout) drainKills.inc();
      const since = this.drainingSince.get(worker.id);
      if (since !== undefined) {
        this.drainingSince.delete(worker.id);
        drainSeconds.observe((Date.now() - since) / 1000);
      }
    };
    const onUpgrade = ({ outcome, origin, durationMs }: UpgradeReport) => {
      upgrades.inc({ outcome });
      upgradesByOrigin.inc({ origin });
      upgradeSeconds.observe({ outcome }, durationMs / 1000);
    };
    const onBroadcast = ({ delivered }: BroadcastResult) => {
      broadcasts.inc();
      deliveries.inc(delivered);
    };
    master.pool.on('transition', onTransition);
    master.pool.on('exit', onExit);
    master.on('upgrade', onUpgrade);
    master.on('broadcast', onBroadcast);
    this.unsubscribe = () => {
      master.pool.off('transition', onTransition);
      master.pool.off('exit', onExit);
      master.off('upgrade', onUpgrade);
      master.off('broadcast', onBroadcast);
    };
  }

  /** The Prometheus text exposition of every metric. */
  async text(): Promise<string> {
    const own = await this.registry.metrics();
    return this.processRegistry ? `${await this.processRegistry.metrics()}\n${own}` : own;
  }

  dispose(): void {
    this.unsubscribe();
    this.registry.clear();
  }
}

export interface MetricsServer {
  /** The scrape URL, e.g. "http://127.0.0.1:9464/metrics". */
  readonly url: string;
  /** "127.0.0.1:9464" */
  readonly endpoint: string;
  /** Its listening socket, for a successor master. */
  listenerHandle(): ListenHandle | undefined;
  /** A successor took the port over: stops taking connections; those open here close as handed-over-http.ts says. */
  stopAccepting(): void;
  close(): Promise<void>;
}

/** Serves GET /metrics over HTTP. A bind failure is one LiveswapError naming the address and why. */
export async function startMetricsServer(metrics: MasterMetrics, where: MetricsEndpoint, log: Logger, inheritedFd?: number): Promise<MetricsServer> {
  const connections = new HandedOverHttp();
  const server = http.createServer((req, res) => {
    const headers = connections.request(req, res);
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain', ...headers }).end('not found: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain', Allow: 'GET, HEAD', ...headers }).end('use GET\n');
      return;
    }
    metrics.text().then(
      (body) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType, ...headers }).end(req.method === 'HEAD' ? undefined : body),
      (error: unknown) => {
        log.error(`metrics: ${(error as Error)?.stack ?? String(error)}`);
        res.writeHead(500, { 'Content-Type': 'text/plain', ...headers }).end('could not collect the metrics\n');
      },
    );
  });
  server.on('connection', (socket: net.Socket) => connections.track(socket));
  // A scraper keeps its connection alive between scrapes; that must not hold up the master's exit.
  server.keepAliveTimeout = 5000;
  const refusals = new RefusalLog(log);
  capConnections(server, CONTROL_LIMITS.maxConnections, 'metrics port', refusals);

  const endpoint = await listenOn(server, where, 'metrics', inheritedFd).catch((error: unknown) => {
    refusals.close();
    throw error;
  });
  const url = `http://${endpoint}/metrics`;
  log.info(`metrics on ${url}`);

  // 'close': not listening, and no connection left.
  const closed = new Promise<void>((resolve) => server.once('close', () => resolve()));
  let accepting = true;
  const stopAccepting = () => {
    if (!accepting) return;
    accepting = false;
    // net's close, not http's: that one would close idle keep-alive connections, under a scrape about to arrive.
    net.Server.prototype.close.call(server);
  };
  return {
    url,
    endpoint,
    listenerHandle: () => listenerHandleOf(server),
    stopAccepting() {
      stopAccepting();
      connections.handOver();
    },
    async close() {
      refusals.close();
      await connections.close();
      accepting = false;
      server.close(); // http's: its connection-checking timer goes too.
      server.closeAllConnections();
      return closed;
    },
  };
}
