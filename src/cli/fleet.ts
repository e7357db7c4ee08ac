/**
 * `-u FILE --hosts LIST` (a fleet rollout, src/fleet/rollout.ts) and
 * `--status --hosts LIST` (one row per host). One line per host transition
 * as it happens, then a summary line; --json prints one result object
 * instead. Exit codes: report.ts (0 every host upgraded; 1 the rollout
 * failed and the upgraded hosts were rolled back; 5 a rollback failed too).
 */
import { GetStatusResponse } from '../gen/liveswap/v1/liveswap.js';
import { fleetStatus, rollout, type FleetOptions, type HostStatus } from '../fleet/rollout.js';
import { toProtoReadyMode } from '../common/ready-mode.js';
import { fromHere } from '../options.js';
import type { Args } from './args.js';
import { clientOptionsOf } from './flags.js';
import { EXIT, print } from './report.js';

function fleetOptions(args: Args): FleetOptions {
  // Each host's own address and port come from the list; the rest (token, TLS) applies to all.
  const { address: _address, port: _port, socket: _socket, ...credentials } = clientOptionsOf(args);
  return { hosts: args.hosts!, connect: credentials };
}

export async function runRollout(args: Args): Promise<number> {
  const json = Boolean(args.json);
  const result = await rollout({
    ...fleetOptions(args),
    target: fromHere(args.upgrade!),
    ...(args.batch !== undefined && { batch: args.batch }),
    upgrade: {
      readyMode: toProtoReadyMode(args['ready-mode']),
      readyTimeoutMs: args['ready-timeout'] ?? 0,
      drainTimeoutMs: args['drain-timeout'] ?? 0,
    },
    onEvent: (e) => {
      if (!json) print(`${e.host}${e.canary ? ' (canary)' : ''}: ${e.state}: ${e.detail}`);
    },
  });
  const count = (state: string) => result.hosts.filter((h) => h.state === state).length;
  if (json) print(JSON.stringify(result));
  else if (result.ok) print(`rollout done: ${result.hosts.length} host(s) upgraded to ${result.target}`);
  else {
    const summary = `rollout failed at ${result.failedHost}: ${result.reason}`;
    const after = `${count('rolled-back')} host(s) rolled back, ${count('rollback-failed')} rollback(s) failed, ${count('untouched')} host(s) not reached`;
    process.stderr.write(`liveswap: ${summary}\n`);
    print(`rollout failed at ${result.failedHost}; ${after}`);
  }
  if (result.ok) return EXIT.ok;
  return result.rollbackFailed ? EXIT.rollbackFailed : EXIT.failed;
}

function statusRow(h: HostStatus): string[] {
  if (!h.status) return [h.host, 'down', '-', '-', '-', '-', h.error?.message ?? ''];
  const s = h.status;
  return [h.host, 'up', String(s.generation), `${s.counts?.ready ?? 0}/${s.forks}`, s.operation || '-', s.target || '-', s.previousTarget || '-'];
}

export async function runFleetStatus(args: Args): Promise<number> {
  const rows = await fleetStatus(fleetOptions(args));
  if (args.json) {
    print(JSON.stringify(rows.map((h) => ({ host: h.host, ...(h.status ? { status: GetStatusResponse.toJSON(h.status) } : { error: h.error }) }))));
  } else {
    const table = [['HOST', 'STATE', 'GEN', 'READY', 'OPERATION', 'TARGET', 'PREVIOUS / ERROR'], ...rows.map(statusRow)];
    const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
    for (const row of table) print(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
  }
  return rows.every((h) => h.status) ? EXIT.ok : EXIT.unreachable;
}
