/**
 * Issue 19, credentials and refusals, each attack played from this account
 * against a real master:
 * - `--token VALUE` is in /proc/PID/cmdline for every local user to read:
 *   `--token-file PATH` and `--token -` (stdin) keep it out;
 * - `LIVESWAP_TOKEN=… liveswap -u x -a 10.0.0.5` sent the token in clear text
 *   to whatever answered there: the client now refuses without TLS or --insecure;
 * - monitoring needed the full token, which can deploy: the read-only token
 *   may call GetStatus and WatchWorkers only;
 * - 2,000 refused calls wrote 2,000 warn lines: refusals are counted per peer.
 */
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { connect } from '../src/client/index.js';
import { expectGrpcError } from './helpers/grpc.js';
import { freePort } from './helpers/net.js';
import { fixture, tempDir } from './helpers/paths.js';
import { runCli, spawnCli, startMaster } from './helpers/processes.js';
import { waitFor } from './helpers/wait.js';

function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
  return lines[0]!;
}

/** What every local user can read of a process's command line. */
const cmdline = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');

test('--token-file and --token - keep the token out of /proc/PID/cmdline, where --token VALUE shows it', async (t) => {
  const stateDir = path.join(tempDir(), 'state');
  const master = await startMaster(fixture('v1.js'), { tcp: true, forks: 1, env: { APP_PORT: String(await freePort()) }, args: ['--state-dir', stateDir], clientOptions: { stateDir } });
  t.after(() => master.stop());
  const tokenFile = path.join(stateDir, `127.0.0.1_${master.port}.token`);
  const token = fs.readFileSync(tokenFile, 'utf8').trim();
  const copy = path.join(tempDir(), 'my.token'); // As an operator would keep it elsewhere.
  fs.copyFileSync(tokenFile, copy);
  fs.chmodSync(copy, 0o600);

  const exposed = spawnCli(t, ['--watch', '-p', String(master.port), '--token', token]);
  const hidden = spawnCli(t, ['--watch', '-p', String(master.port), '--token-file', copy]);
  for (const watch of [exposed, hidden]) await waitFor('the watch snapshot', () => /1 worker\(s\), generation 1/.test(watch.stdout()));
  assert.ok(cmdline(exposed.child.pid!).includes(token), 'the attack: --token VALUE is in the command line');
  assert.ok(!cmdline(hidden.child.pid!).includes(token), '--token-file is not');

  const fromStdin = await runCli(['--status', '--json', '-p', String(master.port), '--token', '-'], { input: `${token}\n` });
  assert.equal(fromStdin.code, 0, fromStdin.stderr);
  assert.equal(JSON.parse(fromStdin.stdout).masterPid, master.pid);
  const noInput = await runCli(['--status', '-p', String(master.port), '--token', '-'], { input: '' });
  assert.equal(oneLine(noInput.stderr), 'liveswap: --token - read no token from standard input');
  const both = await runCli(['--status', '-p', String(master.port), '--token', token, '--token-file', copy]);
  assert.equal(both.code, 2);
  assert.equal(oneLine(both.stderr), 'liveswap: --token and --token-file are alternatives: give one or the other');
  const missing = await runCli(['--status', '-p', String(master.port), '--token-file', path.join(tempDir(), 'none')]);
  assert.match(oneLine(missing.stderr), /^liveswap: no token in .*none: the file is missing or empty$/);
});

/** This machine's first address that is not loopback, if it has one. */
function outwardAddress(): string | undefined {
  return Object.values(os.networkInterfaces()).flat().find((i) => i && !i.internal && i.family === 'IPv4')?.address;
}

test('a client refuses to send its token in clear text to a non-loopback address unless --insecure', async (t) => {
  const address = outwardAddress() ?? '192.0.2.1';
  const port = await freePort();
  // The other side: whatever answers on that address, recording whether anyone dialled it.
  let connections = 0;
  const listener = net.createServer((socket) => {
    connections++;
    socket.destroy();
  });
  const listening = outwardAddress()
    ? await new Promise<boolean>((resolve) => listener.once('error', () => resolve(false)).listen(port, address, () => resolve(true)))
    : false;
  t.after(() => new Promise<void>((resolve) => (listening ? listener.close(() => resolve()) : resolve())));

  const env = { LIVESWAP_TOKEN: 'a-token-worth-stealing' };
  const refused = await runCli(['-u', fixture('v2.js'), '-a', address, '-p', String(port)], { env });
  assert.equal(refused.code, 2, refused.stderr);
  assert.equal(
    oneLine(refused.stderr),
    `liveswap: refusing to send the control token in clear text to ${address}: connect with TLS (--tls or --tls-ca), or give --insecure to accept clear text`,
  );
  assert.equal(connections, 0, 'nothing was dialled');
  // The API's connect() keeps the same rule, and says why the same way.
  assert.throws(() => connect({ address, port, token: 'a-token-worth-stealing' }), (error: Error & { code?: number }) => {
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.match(error.message, /^refusing to send the control token in clear text to /);
    return true;
  });
  connect({ address, port, insecure: true }).close();
  if (!listening) return; // No second interface to listen on: the refusal above is what there is to see.
  const insecure = await runCli(['--status', '-a', address, '-p', String(port), '--insecure'], { env });
  assert.equal(insecure.code, 3, insecure.stderr); // It dialled: the listener hung up on it.
  assert.ok(connections > 0, '--insecure is what let it dial');
});

test('the read-only token: GetStatus and WatchWorkers, PERMISSION_DENIED for everything else', async (t) => {
  const appPort = await freePort();
  const stateDir = path.join(tempDir(), 'state');
  const master = await startMaster(fixture('v1.js'), { tcp: true, forks: 1, env: { APP_PORT: String(appPort) }, args: ['--state-dir', stateDir], clientOptions: { stateDir } });
  t.after(() => master.stop());
  const readOnlyFile = path.join(stateDir, `127.0.0.1_${master.port}.read-only.token`);
  assert.equal(fs.statSync(readOnlyFile).mode & 0o777, 0o600);
  const readOnly = fs.readFileSync(readOnlyFile, 'utf8').trim();
  assert.notEqual(readOnly, fs.readFileSync(path.join(stateDir, `127.0.0.1_${master.port}.token`), 'utf8').trim());

  const monitor = connect({ port: master.port, token: readOnly });
  t.after(() => monitor.close());
  const before = await monitor.status();
  assert.equal(before.masterPid, master.pid);
  for await (const item of monitor.watch()) {
    assert.equal(item.event?.$case, 'snapshot');
    break;
  }
  for (const [rpc, call] of [
    ['Upgrade', () => monitor.upgrade({ target: fixture('v2.js') })],
    ['Start', () => monitor.start({ target: fixture('v2.js') })],
    ['Kill', () => monitor.kill()],
    ['Die', () => monitor.die()],
    ['Broadcast', () => monitor.broadcast('hi')],
  ] as const) {
    await expectGrpcError(call(), status.PERMISSION_DENIED, new RegExp(`^read-only token: it may call GetStatus and WatchWorkers only, not ${rpc}; use the master's full token$`));
  }
  const cli = await runCli(['-k', '-p', String(master.port), '--token-file', readOnlyFile]);
  assert.equal(cli.code, 1);
  assert.match(oneLine(cli.stderr), /^liveswap: read-only token: it may call GetStatus and WatchWorkers only, not Kill/);
  const after = await monitor.status();
  assert.deepEqual(after.workers.map((w) => w.pid), before.workers.map((w) => w.pid), 'nothing was killed');
  assert.doesNotMatch(master.stdout(), /received/, 'no broadcast reached a worker');
});

test('2,000 refused calls from one peer make two log lines, with the count, not 2,000', async (t) => {
  const master = await startMaster(undefined, { tcp: true, waitReady: false });
  t.after(() => master.stop());
  const intruder = connect({ port: master.port, token: 'not-the-token' });
  t.after(() => intruder.close());
  const started = Date.now();
  for (let batch = 0; batch < 20; batch++) {
    const calls = Array.from({ length: 100 }, () => intruder.status().then(() => assert.fail('accepted'), (error: { code: number }) => assert.equal(error.code, status.UNAUTHENTICATED)));
    await Promise.all(calls);
  }
  const elapsedMs = Date.now() - started;
  await master.stop(); // Flushes the count not yet logged.
  const lines = master.stderr().split('\n').filter((line) => / refused /.test(line));
  const first = lines.filter((line) => /refused \/liveswap\.v1\.LiveswapService\/GetStatus from 127\.0\.0\.1: wrong token/.test(line));
  const counted = lines.map((line) => Number(/refused (\d+) more call\(s\) from 127\.0\.0\.1 in the last 10 s: wrong token ×\1$/.exec(line)?.[1] ?? 0));
  assert.equal(first.length, 1, lines.join('\n'));
  assert.equal(1 + counted.reduce((a, b) => a + b, 0), 2000, 'every refusal is counted');
  // One line at the first refusal, then one per 10 s interval (and the last at shutdown).
  assert.ok(lines.length <= 2 + Math.ceil(elapsedMs / 10_000), `${lines.length} lines in ${elapsedMs} ms:\n${lines.join('\n')}`);
});
