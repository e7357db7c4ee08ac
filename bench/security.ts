/**
 * What an attacker on the control port costs the master's memory.
 *
 *   npm run bench:security
 *   BENCH_CLI=/path/to/an/older/checkout/bin/liveswap.js npm run bench:security   (the same attacks on another build)
 *
 * For each attack a fresh master (the real CLI, 1 worker of v1.js, control on
 * 127.0.0.1 and a free port) is started; the attacker (test/helpers/attacker.ts)
 * runs as its own process; the master's RSS is sampled every 50 ms; an
 * authenticated client calls GetStatus every 100 ms throughout. Prints a
 * markdown table and writes bench/results/security.json.
 *
 *   reflection, no token   one connection that reads nothing, BENCH_REFLECTION_MESSAGES
 *                          (default 1,000,000) reflection requests
 *   reflection, read-only  the same with the read-only token (a monitoring credential)
 *   health watches         BENCH_HEALTH_WATCHES (default 20,000) Health.Watch streams over
 *                          BENCH_HEALTH_CONNECTIONS (default 4) connections
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureFlood } from '../test/helpers/flood.js';
import { freePort } from '../test/helpers/net.js';
import { fixture, STATE_DIR } from '../test/helpers/paths.js';
import { startMaster } from '../test/helpers/processes.js';
import { table, writeJson } from './lib/report.js';
import fs from 'node:fs';

const MESSAGES = Number(process.env.BENCH_REFLECTION_MESSAGES ?? 1_000_000);
const WATCHES = Number(process.env.BENCH_HEALTH_WATCHES ?? 20_000);
const CONNECTIONS = Number(process.env.BENCH_HEALTH_CONNECTIONS ?? 4);
const CLI = process.env.BENCH_CLI;

const afters: (() => Promise<void>)[] = [];
const t = { after: (fn: () => Promise<void>) => void afters.push(fn) };

async function run(name: string, mode: string, args: (string | number)[], doneEvent: string, readOnlyToken = false) {
  const master = await startMaster(fixture('v1.js'), { tcp: true, forks: 1, env: { APP_PORT: String(await freePort()) }, ...(CLI && { cli: CLI }) });
  try {
    const tokenFile = path.join(STATE_DIR, `127.0.0.1_${master.port}.read-only.token`);
    const token = readOnlyToken ? [fs.readFileSync(tokenFile, 'utf8').trim()] : [];
    const result = await measureFlood(t, master, mode, { args: [...args, ...token], doneEvent, timeoutMs: 300_000 });
    return {
      attack: name,
      'RSS before (MiB)': result.rssBeforeMiB.toFixed(0),
      'RSS peak (MiB)': result.rssPeakMiB.toFixed(0),
      'RSS after it left (MiB)': result.rssAfterMiB.toFixed(0),
      'GetStatus answered / failed': `${result.statusAnswered} / ${result.statusFailed}`,
      'attacker saw': JSON.stringify(result.outcome),
    };
  } finally {
    for (const fn of afters.splice(0)) await fn();
    await master.stop();
  }
}

async function main() {
  const rows = [await run('reflection flood, no token', 'reflection-flood', [MESSAGES], 'flooded')];
  if (!CLI) rows.push(await run('reflection flood, read-only token', 'reflection-flood', [MESSAGES], 'flooded', true));
  rows.push(await run(`${WATCHES} health watches, ${CONNECTIONS} connections`, 'health-watch', [WATCHES, CONNECTIONS], 'watches'));
  console.log(`liveswap control port under attack (${CLI ? `build ${CLI}` : 'this build'}; Node ${process.version})\n`);
  console.log(table(rows));
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results');
  console.log(`\n${writeJson(dir, CLI ? 'security-other-build.json' : 'security.json', rows)}`);
}

main().then(
  () => process.exit(0),
  (error: Error) => {
    console.error(error.stack ?? error);
    process.exit(1);
  },
);
