/**
 * Upgrade timing under light load: how long a rolling upgrade of 2 workers
 * takes, and how soon traffic moves from the old version to the new one.
 *
 *   npm run bench            (defaults: 2 workers, 5 upgrades, 8 clients)
 *
 * For each upgrade (v1 → v2 → v1 …, a real master, real workers, real HTTP on
 * 127.0.0.1) it records, relative to the moment the Upgrade RPC is sent:
 *   rpc ms        when the RPC returned (new workers confirmed, old ones exited)
 *   first new ms  the first response served by the new version
 *   last old ms   the last response served by the old version
 * and the requests served and failed meanwhile. Every loop is bounded in time
 * and count; it prints a markdown table and writes bench/results/upgrade-timing.json.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { freePort } from '../test/helpers/net.js';
import { fixture, ROOT } from '../test/helpers/paths.js';
import { startMaster } from '../test/helpers/processes.js';

const FORKS = Number(process.env.BENCH_FORKS ?? 2);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
const MAX_REQUESTS_PER_CLIENT = 50_000;
const SETTLE_MS = 300;

interface Sample {
  end: number;
  body: string;
}

function request(port: number, agent: http.Agent | false): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function main() {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: FORKS, env: { APP_PORT: String(port) } });
  const samples: Sample[] = [];
  let failed = 0;
  let running = true;
  const agents = Array.from({ length: CLIENTS / 2 }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const loop = async (agent: http.Agent | false) => {
    for (let i = 0; running && i < MAX_REQUESTS_PER_CLIENT; i++) {
      try {
        const body = await request(port, agent);
        samples.push({ end: performance.now(), body });
      } catch {
        failed++;
      }
    }
  };
  const loops = [...agents.map((a) => loop(a)), ...Array.from({ length: CLIENTS - agents.length }, () => loop(false))];

  const rows: Record<string, number | string>[] = [];
  try {
    let current = 'v1';
    for (let run = 1; run <= RUNS; run++) {
      const next = current === 'v1' ? 'v2' : 'v1';
      await new Promise((r) => setTimeout(r, SETTLE_MS)); // steady traffic before each upgrade
      const from = samples.length;
      const failedBefore = failed;
      const t0 = performance.now();
      await master.client.upgrade({ target: fixture(`${next}.js`) });
      const rpc = performance.now() - t0;
      await new Promise((r) => setTimeout(r, SETTLE_MS)); // let straggling old responses land
      const window = samples.slice(from);
      const firstNew = window.find((s) => s.body === next);
      const lastOld = window.filter((s) => s.body === current).at(-1);
      rows.push({
        run,
        upgrade: `${current} → ${next}`,
        'rpc ms': Math.round(rpc),
        'first new ms': firstNew ? Math.round(firstNew.end - t0) : 'n/a',
        'last old ms': lastOld ? Math.round(lastOld.end - t0) : 'n/a',
        requests: window.length,
        failed: failed - failedBefore,
      });
      current = next;
    }
  } finally {
    running = false;
    await Promise.all(loops);
    for (const agent of agents) agent.destroy();
    await master.stop();
  }

  const columns = Object.keys(rows[0]!);
  const table = [
    `| ${columns.join(' | ')} |`,
    `| ${columns.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${columns.map((c) => String(row[c])).join(' | ')} |`),
  ].join('\n');
  console.log(`\nUpgrade timing: ${FORKS} workers, ${CLIENTS} clients (${agents.length} keep-alive, ${CLIENTS - agents.length} connection-close), node ${process.version}\n`);
  console.log(table);
  const out = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'upgrade-timing.json'), JSON.stringify({ forks: FORKS, clients: CLIENTS, node: process.version, rows }, null, 2));
}

await main();
