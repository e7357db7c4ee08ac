/**
 * One attack on a real master, measured: the master's RSS before, at its peak
 * during, and after the attacker left; and whether an authenticated client
 * kept getting answers meanwhile. Shared by test/security-flood.test.ts
 * (which asserts a bound) and bench/security.ts (which prints the table).
 */
import fs from 'node:fs';
import type { MasterProcess } from './processes.js';
import { spawnAttacker, type Attacker } from './attacker.js';

/** Resident set size of `pid` in MiB (Linux /proc). */
export function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

export interface FloodResult {
  rssBeforeMiB: number;
  rssPeakMiB: number;
  /** After the attacker was killed and the master had a moment to release. */
  rssAfterMiB: number;
  /** Authenticated GetStatus calls answered and failed while the attack ran. */
  statusAnswered: number;
  statusFailed: number;
  /** The attacker's last report of the attack (what it sent, what it was told). */
  outcome: Record<string, unknown>;
}

export interface FloodOptions {
  /** The attacker's arguments after the port (see attacker.ts). */
  args: (string | number)[];
  /** The event the attacker reports when it has done its worst. */
  doneEvent: string;
  timeoutMs?: number;
}

/** Runs one attacker against `master` (TCP) while sampling its RSS and calling GetStatus; kills the attacker at the end. */
export async function measureFlood(
  t: { after(fn: () => Promise<void>): void },
  master: MasterProcess,
  mode: string,
  { args, doneEvent, timeoutMs = 120_000 }: FloodOptions,
): Promise<FloodResult> {
  await master.client.status(); // Connected and warm before the first sample.
  const rssBeforeMiB = rssMiB(master.pid);
  let rssPeakMiB = rssBeforeMiB;
  const sampler = setInterval(() => (rssPeakMiB = Math.max(rssPeakMiB, rssMiB(master.pid))), 50);
  let statusAnswered = 0;
  let statusFailed = 0;
  let attacking = true;
  const prober = (async () => {
    while (attacking) {
      await master.client.status().then(
        () => statusAnswered++,
        () => statusFailed++,
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  let attacker: Attacker | undefined;
  try {
    attacker = spawnAttacker(t, [mode, master.port, ...args]);
    const done = await attacker.waitFor(doneEvent, timeoutMs);
    // One more authenticated call with the attacker still connected, holding whatever it made the master keep.
    await master.client.status().then(
      () => statusAnswered++,
      () => statusFailed++,
    );
    rssPeakMiB = Math.max(rssPeakMiB, rssMiB(master.pid));
    attacking = false;
    await prober;
    await attacker.stop();
    // The master notices the closed connection and frees what it held.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const { event: _event, ...outcome } = done;
    return { rssBeforeMiB, rssPeakMiB, rssAfterMiB: rssMiB(master.pid), statusAnswered, statusFailed, outcome };
  } finally {
    attacking = false;
    clearInterval(sampler);
    await prober;
    await attacker?.stop();
  }
}
