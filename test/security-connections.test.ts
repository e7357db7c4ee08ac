/**
 * The master's own ports cap the connections they hold (connection-cap.ts).
 * The attack: a peer opens connections to the control, health or metrics
 * port and sends nothing more. Each costs the master a file descriptor; with
 * them gone, node:cluster's round-robin accept in the master fails and the
 * app's clients are reset. Before the cap, 600 such connections to the
 * control port of a master limited to 512 descriptors reset 50 of 50 app
 * requests. The master's descriptor limit is lowered with prlimit(1) once it
 * runs, so the test needs hundreds of connections, not a million.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';
import { CONTROL_LIMITS } from '../src/control/limits.js';
import { WorkerState } from '../src/client/index.js';
import { spawnAttacker, type Attacker } from './helpers/attacker.js';
import { freePort, get } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { startMaster, type MasterProcess } from './helpers/processes.js';
import { waitFor } from './helpers/wait.js';

const CAP = CONTROL_LIMITS.maxConnections;
const ATTACK = CAP + 344;

function limitDescriptors(pid: number, max: number): void {
  execFileSync('prlimit', ['--pid', String(pid), `--nofile=${max}:${max}`]);
}

const openDescriptors = (pid: number) => fs.readdirSync(`/proc/${pid}/fd`).length;

/** Waits until the master has accepted every connection and kept exactly CAP of them. */
async function keptAtCap(attacker: Attacker) {
  return attacker.waitFor('connections', 30_000, (r) => r.connected === ATTACK && r.open === CAP);
}

/** 50 app requests, one connection each: each is accepted by the master (round robin) and handed to a worker. */
async function appRequests(port: number): Promise<{ ok: number; failed: string[] }> {
  let ok = 0;
  const failed: string[] = [];
  for (let i = 0; i < 50; i++) {
    try {
      const reply = await get(port, '/', false, 5000);
      if (reply.status === 200) ok++;
      else failed.push(`HTTP ${reply.status}`);
    } catch (error) {
      failed.push((error as NodeJS.ErrnoException).code ?? (error as Error).message);
    }
  }
  return { ok, failed };
}

function refusalLines(master: MasterProcess, port: string): string[] {
  return master.stderr().split('\n').filter((line) => line.includes(`the ${port} already holds ${CAP} connections`));
}

test(`${ATTACK} idle connections to the control port: the master keeps ${CAP}, the app keeps serving, and the operator gets back in once they go`, async (t) => {
  const appPort = await freePort();
  const master = await startMaster(fixture('v1.js'), { tcp: true, forks: 2, env: { APP_PORT: String(appPort) } });
  t.after(() => master.stop());
  limitDescriptors(master.pid, 512);

  const attacker = spawnAttacker(t, ['connections', master.port, ATTACK, 'h2']);
  await keptAtCap(attacker);
  assert.ok(openDescriptors(master.pid) < 512 - 100, `the master holds ${openDescriptors(master.pid)} descriptors of 512`);

  const app = await appRequests(appPort);
  assert.deepEqual(app, { ok: 50, failed: [] }, 'every app request was served while the control port was full');
  // One line for the first refusal; the rest are counted into a later line, not one line each.
  await waitFor('the refusal in the log', () => refusalLines(master, 'control port').length >= 1 || undefined, { timeoutMs: 5000 });
  assert.ok(refusalLines(master, 'control port').length <= 2, refusalLines(master, 'control port').join('\n'));

  await attacker.stop();
  const status = await waitFor(
    'GetStatus once the attacker left',
    () => master.client.status().catch(() => undefined),
    { timeoutMs: 10_000 },
  );
  assert.equal(status.workers.filter((w) => w.state === WorkerState.WORKER_STATE_READY).length, 2);
});

test(`${ATTACK} connections each to the health port (HTTP/2 preface) and the metrics port (half a request): ${CAP} kept on each, the app keeps serving`, async (t) => {
  const [appPort, healthPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const master = await startMaster(fixture('v1.js'), {
    tcp: true,
    forks: 2,
    env: { APP_PORT: String(appPort) },
    args: ['--health-port', String(healthPort), '--metrics-port', String(metricsPort)],
  });
  t.after(() => master.stop());
  // Room for both caps and the master's own descriptors, not for both attacks uncapped.
  limitDescriptors(master.pid, 1024);

  const health = spawnAttacker(t, ['connections', healthPort, ATTACK, 'h2']);
  const metrics = spawnAttacker(t, ['connections', metricsPort, ATTACK, 'http1']);
  await Promise.all([keptAtCap(health), keptAtCap(metrics)]);

  assert.deepEqual(await appRequests(appPort), { ok: 50, failed: [] }, 'every app request was served while both ports were full');
  await waitFor('both refusals in the log', () => (refusalLines(master, 'health port').length && refusalLines(master, 'metrics port').length) || undefined, {
    timeoutMs: 5000,
  });

  await Promise.all([health.stop(), metrics.stop()]);
  const probe = await waitFor('/readyz once the attackers left', () => get(healthPort, '/readyz', false, 2000).catch(() => undefined), { timeoutMs: 10_000 });
  assert.equal(probe.status, 200);
  const scrape = await waitFor('/metrics once the attackers left', () => get(metricsPort, '/metrics', false, 2000).catch(() => undefined), { timeoutMs: 10_000 });
  assert.equal(scrape.status, 200);
});
