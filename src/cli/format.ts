/** How the CLI prints workers and events for people (text) and machines (--json). */
import { Transition, WatchWorkersResponse, type GetStatusResponse } from '../gen/liveswap/v1/liveswap.js';
import type { ReadyMode } from '../common/config.js';
import { originName } from '../common/origin.js';
import { readyModeName } from '../common/ready-mode.js';
import { formatUptime, reasonText, stateName, workerTable } from './worker-table.js';
import { escapeControl } from '../common/escape.js';

/** "ready on …": how the status line says what makes a worker ready. */
const READY_ON: Record<ReadyMode, string> = { listening: 'listening', 'first-listen': 'first listen', message: 'the ready message' };

function uptime(since: Date | undefined): string {
  return since ? formatUptime(Date.now() - since.getTime()) : '-';
}

export function describeTransition(t: Transition): string {
  const w = t.worker!;
  const move = t.fromState ? `${stateName(t.fromState)} → ${stateName(t.toState)}` : stateName(t.toState);
  return `worker ${w.id} (pid ${w.pid}, gen ${w.generation}) ${move}: ${escapeControl(w.reason)}`;
}

export function statusText(s: GetStatusResponse): string {
  const c = s.counts ?? { starting: 0, ready: 0, draining: 0 };
  const via = s.requestedTarget && s.requestedTarget !== s.target ? ` (as given: ${escapeControl(s.requestedTarget)})` : '';
  const head = s.target
    ? `generation ${s.generation}: ${escapeControl(s.target)}${via}`
    : 'no target started yet';
  const mode = READY_ON[readyModeName(s.readyMode) ?? 'listening'];
  const lines = [
    `master pid ${s.masterPid} (Node ${s.nodeVersion}${s.keeperPid ? `, kept by pid ${s.keeperPid}` : ''}), up ${uptime(s.masterStartedAt)}; ${head} (ready on ${mode})`,
    `workers: ${c.ready} ready, ${c.starting} starting, ${c.draining} draining (pool size ${s.forks}); ${s.spares} spare(s); ${s.restarts} crash restart(s)${s.respawnsPending ? `, ${s.respawnsPending} respawn(s) pending` : ''}${s.operation ? `; ${s.operation} in progress` : ''}`,
  ];
  if (s.lastUpgrade || s.following) lines.push(deployLine(s));
  const workerNodes = [...new Set(s.workers.map((w) => w.nodeVersion).filter((v) => v && v !== s.nodeVersion))];
  if (workerNodes.length > 0) {
    const on = (version: string) => s.workers.filter((w) => w.nodeVersion === version).map((w) => w.id).join(', ');
    lines.push(`workers on another Node: ${workerNodes.map((v) => `${v} (worker ${on(v)})`).join('; ')}`);
  }
  if (s.lastCrash) {
    const w = s.lastCrash;
    lines.push(`last crash: worker ${w.id} (pid ${w.pid}, gen ${w.generation}, ${w.restarts} restart(s) before it) ${reasonText(w)}`);
  }
  if (s.lastKilledAtDrainTimeout) {
    const w = s.lastKilledAtDrainTimeout;
    lines.push(`killed at the drain timeout: ${s.killedAtDrainTimeout} worker(s) since the master started; last: worker ${w.id} (pid ${w.pid}, gen ${w.generation})`);
  }
  if (s.workers.length > 0) lines.push('', workerTable(s.workers));
  return lines.join('\n');
}

const OUTCOME_NAME: Record<number, string> = { 1: 'ok', 2: 'rolled back', 3: 'vetoed', 4: 'aborted', 5: 'failed' };

/** "following …; last upgrade: generation 4 (asked by follow) rolled back; previous release …" */
function deployLine(s: GetStatusResponse): string {
  const parts: string[] = [];
  if (s.following) parts.push(`following ${s.following}`);
  const u = s.lastUpgrade;
  if (u) parts.push(`last upgrade: generation ${u.generation} (asked by ${originName(u.origin) ?? 'unknown'}) ${OUTCOME_NAME[u.outcome] ?? 'ended'}`);
  if (s.previousTarget) parts.push(`previous release: ${s.previousTarget}`);
  return parts.join('; ');
}

export function watchItemText(item: WatchWorkersResponse): string {
  switch (item.event?.$case) {
    case 'snapshot': {
      const s = item.event.snapshot;
      const c = s.counts ?? { starting: 0, ready: 0, draining: 0 };
      const head = `${s.workers.length} worker(s), generation ${s.generation}, ${c.ready} ready`;
      return s.workers.length ? `${head}\n${workerTable(s.workers)}` : head;
    }
    case 'transition':
      return describeTransition(item.event.transition);
    default:
      return '';
  }
}

export function watchItemJson(item: WatchWorkersResponse): string {
  return JSON.stringify(WatchWorkersResponse.toJSON(item));
}
