/**
 * Fleet rollouts over three real masters on loopback, each under HTTP load:
 * a good release reaches all three with no failed request (the API, batch
 * 2 after the canary); a release that fails on the second master only
 * leaves the first rolled back, the second rolled back by itself and the
 * third untouched, and the CLI exits non-zero naming the second and why;
 * `dns:localhost:PORT` reaches a master on 127.0.0.1 and one on ::1.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Origin, UpgradeOutcome } from '../src/client/index.js';
import { rollout, type HostEvent } from '../src/fleet/rollout.js';
import type { LoadStats } from './helpers/load.js';
import { freePort, get, startLoad } from './helpers/net.js';
import { fixture, tempDir } from './helpers/paths.js';
import { MASTER_TOKEN_ENV, STATE_DIR_ENV, TOKEN_ENV } from '../src/common/token-file.js';
import { runCli, startMaster, type MasterProcess } from './helpers/processes.js';
import { waitFor } from './helpers/wait.js';

interface Host {
  master: MasterProcess;
  appPort: number;
  name: string;
}

async function startFleet(t: { after(fn: () => Promise<void>): void }, env: Record<string, string>[]): Promise<Host[]> {
  const hosts: Host[] = [];
  for (const extra of env) {
    const appPort = await freePort();
    const master = await startMaster(fixture('v1.js'), { tcp: true, env: { APP_PORT: String(appPort), ...extra } });
    t.after(() => master.stop());
    hosts.push({ master, appPort, name: `127.0.0.1:${master.port}` });
  }
  return hosts;
}

/** Light load on every host's app while `run` runs; the counts per host. */
async function underLoad<T>(hosts: Host[], run: () => Promise<T>): Promise<{ value: T; stats: LoadStats[] }> {
  const loads = hosts.map((h) => startLoad(h.appPort, { keepAlive: 2, close: 2 }));
  await waitFor('load to flow on every host', () => loads.every((l) => l.peek().length > 20));
  const value = await run();
  const stats = await Promise.all(loads.map((l) => l.stop()));
  return { value, stats };
}

function assertNoneFailed(stats: LoadStats[]): void {
  stats.forEach((s, i) => {
    assert.deepEqual(s.errors, {}, `host ${i + 1}: failed requests ${JSON.stringify(s.errors)}`);
    assert.equal(s.failed, 0);
  });
}

test('a good release reaches all 3 masters (canary, then 2 at once) with 0 failed requests', async (t) => {
  const hosts = await startFleet(t, [{}, {}, {}]);
  const events: HostEvent[] = [];
  const { value: result, stats } = await underLoad(hosts, () =>
    rollout({ hosts: hosts.map((h) => h.name).join(','), target: fixture('v2.js'), batch: 2, onEvent: (e) => events.push(e) }),
  );
  assertNoneFailed(stats);
  t.diagnostic(`${stats.reduce((n, s) => n + s.ok, 0)} requests over 3 hosts, ${stats.reduce((n, s) => n + s.failed, 0)} failed`);
  assert.equal(result.ok, true);
  assert.deepEqual(result.hosts.map((h) => [h.host, h.state, h.generation, h.target, h.previousTarget]),
    hosts.map((h) => [h.name, 'upgraded', 2, fixture('v2.js'), fixture('v1.js')]));
  // The canary finished before anyone else began.
  assert.deepEqual(events.slice(0, 2).map((e) => [e.host, e.state, e.canary]), [[hosts[0]!.name, 'upgrading', true], [hosts[0]!.name, 'upgraded', true]]);
  assert.deepEqual(events.slice(2, 4).map((e) => e.state), ['upgrading', 'upgrading'], 'then two at once');
  for (const h of hosts) {
    const s = await h.master.client.status();
    assert.equal(s.target, fixture('v2.js'));
    assert.equal(s.lastUpgrade?.origin, Origin.ORIGIN_RPC);
  }
});

test('a release failing on master 2 only: 1 rolled back, 2 rolled back by itself, 3 untouched; the CLI exits 1 naming 2 and why', async (t) => {
  const hosts = await startFleet(t, [{}, { BREAK_THIS_HOST: '1' }, {}]);
  const list = hosts.map((h) => h.name).join(',');
  const { value: cli, stats } = await underLoad(hosts, () => runCli(['-u', fixture('fails-if-marked.js'), '--hosts', list], { timeoutMs: 60_000 }));
  assertNoneFailed(stats);
  assert.equal(cli.code, 1, cli.stderr);
  const [h1, h2] = hosts as [Host, Host, Host];
  // Each line: HOST: STATE: detail.
  assert.match(cli.stderr.trim(), new RegExp(`^liveswap: rollout failed at ${h2.name}: upgrade rolled back: worker \\d+ exited with code 1 before listening: Error: this host is marked broken`));
  assert.deepEqual(cli.stdout.trim().split('\n').map((line) => line.split(': ').slice(0, 2).join(': ')), [
    `${h1.name} (canary): upgrading`,
    `${h1.name} (canary): upgraded`,
    `${h2.name}: upgrading`,
    `${h2.name}: failed`,
    `${h1.name} (canary): rolling-back`,
    `${h1.name} (canary): rolled-back`,
    `rollout failed at ${h2.name}; 1 host(s) rolled back, 0 rollback(s) failed, 1 host(s) not reached`,
  ]);

  const [s1, s2, s3] = await Promise.all(hosts.map((h) => h.master.client.status()));
  assert.equal(s1!.target, fixture('v1.js'), 'master 1 is back on v1');
  assert.equal(s1!.generation, 3, 'master 1: v2 as generation 2, then v1 again as 3');
  assert.equal(s1!.previousTarget, fixture('fails-if-marked.js'));
  assert.equal(s2!.target, fixture('v1.js'), 'master 2 rolled back by itself');
  assert.equal(s2!.generation, 1);
  assert.equal(s2!.lastUpgrade?.outcome, UpgradeOutcome.UPGRADE_OUTCOME_ROLLED_BACK);
  assert.equal(s3!.generation, 1, 'master 3 untouched');
  assert.equal(s3!.lastUpgrade, undefined);
  // Every host's load saw only v1, or v1 and v2 on master 1 during its short stay.
  assert.deepEqual(Object.keys(stats[1]!.bodies), ['v1']);
  assert.deepEqual(Object.keys(stats[2]!.bodies), ['v1']);

  const json = await runCli(['-u', fixture('fails-if-marked.js'), '--hosts', list, '--json'], { timeoutMs: 60_000 });
  assert.equal(json.code, 1);
  const result = JSON.parse(json.stdout) as { ok: boolean; failedHost: string; hosts: { host: string; state: string; error?: { stderrTail: string[] } }[] };
  assert.equal(result.ok, false);
  assert.equal(result.failedHost, h2.name);
  assert.deepEqual(result.hosts.map((h) => h.state), ['rolled-back', 'failed', 'untouched']);
  assert.ok(result.hosts[1]!.error!.stderrTail.some((line) => /this host is marked broken/.test(line)), 'the failing worker\'s stderr');
});

test('dns:localhost:PORT reaches a master on 127.0.0.1 and one on ::1; --status --hosts prints a row per host', async (t) => {
  let port = 0;
  let masters: MasterProcess[] = [];
  // The same port on both loopback addresses: retry if another process took it on ::1 meanwhile.
  for (let attempt = 0; attempt < 5 && masters.length < 2; attempt++) {
    port = await freePort();
    const started = await Promise.allSettled(
      (['127.0.0.1', '::1'] as const).map(async (address) => {
        const master = await startMaster(fixture('v1.js'), { tcp: true, address, forks: 1, args: ['-p', String(port)], env: { APP_PORT: '0' }, clientOptions: { address } });
        t.after(() => master.stop());
        return master;
      }),
    );
    masters = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    if (masters.length < 2) await Promise.all(masters.map((m) => m.stop()));
  }
  assert.equal(masters.length, 2, 'two masters on the same port');
  assert.deepEqual(masters.map((m) => m.port), [port, port]);

  const status = await runCli(['--status', '--hosts', `dns:localhost:${port}`]);
  assert.equal(status.code, 0, status.stderr);
  const rows = status.stdout.trim().split('\n');
  assert.equal(rows.length, 3);
  assert.match(rows[0]!, /^HOST\s+STATE\s+GEN\s+READY\s+OPERATION\s+TARGET\s+PREVIOUS \/ ERROR$/);
  assert.match(rows[1]!, new RegExp(`^127\\.0\\.0\\.1:${port}\\s+up\\s+1\\s+1/1\\s+-\\s+\\S+v1\\.js\\s+-$`));
  assert.match(rows[2]!, new RegExp(`^\\[::1\\]:${port}\\s+up\\s+1\\s+1/1\\s+-\\s+\\S+v1\\.js\\s+-$`));

  const up = await runCli(['-u', fixture('v2.js'), '--hosts', `dns:localhost:${port}`], { timeoutMs: 60_000 });
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stdout, /rollout done: 2 host\(s\) upgraded to \S+v2\.js/);
  for (const m of masters) assert.equal((await m.client.status()).target, fixture('v2.js'));
});

test('masters given one token ($LIVESWAP_MASTER_TOKEN, --token-file) are reached with it from another state directory; it is not in their apps\' environment', async (t) => {
  const token = crypto.randomBytes(32).toString('base64url');
  const tokenFile = path.join(tempDir(), 'fleet.token');
  fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const fromEnv = await startMaster(fixture('v1.js'), { tcp: true, forks: 1, env: { APP_PORT: String(await freePort()), [MASTER_TOKEN_ENV]: ` ${token}\n` } });
  t.after(() => fromEnv.stop());
  const fromFile = await startMaster(fixture('v1.js'), { tcp: true, forks: 1, env: { APP_PORT: String(await freePort()) }, args: ['--token-file', tokenFile] });
  t.after(() => fromFile.stop());
  const hosts = [fromEnv, fromFile].map((m) => `127.0.0.1:${m.port}`).join(',');
  // A client with no token file of these masters: as on another machine.
  const elsewhere = { [STATE_DIR_ENV]: tempDir() };

  const status = await runCli(['--status', '--hosts', hosts], { env: { ...elsewhere, [TOKEN_ENV]: token } });
  assert.equal(status.code, 0, status.stderr);
  assert.equal(status.stdout.match(/\bup\b/g)?.length, 2, status.stdout);
  const tokenless = await runCli(['-u', fixture('v2.js'), '--hosts', hosts], { env: elsewhere, timeoutMs: 60_000 });
  assert.notEqual(tokenless.code, 0, 'without the token nothing is reached');
  assert.match(tokenless.stderr, /UNAUTHENTICATED|token/);
  const up = await runCli(['-u', fixture('v2.js'), '--hosts', hosts, '--token-file', tokenFile], { env: elsewhere, timeoutMs: 60_000 });
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stdout, /rollout done: 2 host\(s\) upgraded/);

  const wrong = await runCli(['--status', '-p', String(fromEnv.port)], { env: { ...elsewhere, [TOKEN_ENV]: crypto.randomBytes(32).toString('base64url') } });
  assert.equal(wrong.code, 4, wrong.stderr);
  assert.match(wrong.stderr, /UNAUTHENTICATED|token/);
  for (const master of [fromEnv, fromFile]) {
    const worker = (await master.client.status()).workers[0]!;
    const port = Number(worker.listening[0]!.split(':').at(-1));
    assert.deepEqual(Object.keys(JSON.parse((await get(port, '/env')).body) as object).filter((key) => key === MASTER_TOKEN_ENV), [], 'not in the app’s environment');
  }

  // A client's variable is not a master's: a shell that exported some token starts a master with a token of its own.
  const clientVariable = await startMaster(fixture('v1.js'), { tcp: true, forks: 1, env: { APP_PORT: String(await freePort()), [TOKEN_ENV]: token } });
  t.after(() => clientVariable.stop());
  const notIt = await runCli(['--status', '-p', String(clientVariable.port)], { env: { ...elsewhere, [TOKEN_ENV]: token } });
  assert.equal(notIt.code, 4, notIt.stderr);

  // A token too short to be one is refused before anything binds, without echoing it.
  const short = await runCli(['-s', fixture('v1.js'), '-p', '0'], { env: { [MASTER_TOKEN_ENV]: 'hunter2' } });
  assert.equal(short.code, 2, short.stderr);
  assert.equal(short.stderr.trim(), 'liveswap: the control token must be at least 32 characters of visible ASCII (no spaces); --token-file (or $LIVESWAP_MASTER_TOKEN) gave 7: make one with `openssl rand -base64 32`');
});

test('--hosts and --batch are checked before anything is dialled', async () => {
  for (const [args, message] of [
    [['-u', 'x.js', '--hosts', ''], /--hosts needs a list/],
    [['-u', 'x.js', '--hosts', 'a:0'], /"a:0" needs a port from 1 to 65535/],
    [['-u', 'x.js', '--hosts', 'a:b'], /"a:b" must be host:port \(\[addr\]:port for IPv6\) or dns:NAME:PORT/],
    [['-u', 'x.js', '--hosts', 'h:1,,h:2'], /empty entry/],
    [['-u', 'x.js', '--hosts', 'dns:svc'], /"dns:svc" must be dns:NAME:PORT/],
    [['-u', 'x.js', '--batch', '2'], /--batch needs --hosts/],
    [['-u', 'x.js', '--hosts', 'h:1', '--batch', '0'], /--batch must be a whole number of at least 1/],
    [['-u', 'x.js', '--hosts', 'h:1', '-p', '3000'], /--hosts and --port are alternatives/],
    [['-k', '--hosts', 'h:1'], /--hosts does not apply to --kill/],
  ] as const) {
    const result = await runCli([...args]);
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
});
