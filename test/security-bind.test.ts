/**
 * Issue 19, the addresses and sockets a master binds, each attack played
 * from this account against a real master:
 * - another user binds [::1]:PORT first, so a master on `-a localhost` would
 *   bind 127.0.0.1 alone and clients resolving localhost to ::1 would send
 *   their token to the attacker;
 * - a live control socket that refuses nothing but is busy (EAGAIN; another
 *   user's gives EACCES) was taken for stale and replaced;
 * - a master's close removed whatever was at its socket path, even a newer
 *   master's socket.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { connect } from '../src/client/index.js';
import { runMaster } from '../src/run.js';
import { freePort } from './helpers/net.js';
import { fixture, STATE_DIR, tempDir } from './helpers/paths.js';
import { runCli, startMaster } from './helpers/processes.js';
import { waitFor } from './helpers/wait.js';

/** The other user: a TCP listener that records every byte anyone sends it. */
async function listenAsAttacker(t: { after(fn: () => Promise<void>): void }, host: string, port: number) {
  let received = '';
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  t.after(async () => {
    if (server.listening) await close();
  });
  return { received: () => received, connections: () => connections, close };
}

test('localhost: an attacker holding [::1]:PORT stops a master on -a localhost from starting, and a client of localhost never dials ::1', async (t) => {
  const port = await freePort();
  const attacker = await listenAsAttacker(t, '::1', port);

  // The master refuses to serve half of localhost.
  const refused = await runCli(['-s', fixture('v1.js'), '-a', 'localhost', '-p', String(port), '-f', '1'], { env: { APP_PORT: String(await freePort()) } });
  assert.notEqual(refused.code, 0, refused.stderr);
  const lastLine = refused.stderr.trimEnd().split('\n').at(-1)!;
  assert.match(lastLine, new RegExp(`^liveswap: cannot listen on localhost:${port}: 127\\.0\\.0\\.1 bound but \\[::1\\]:${port} did not \\(address already in use\\).*use -a 127\\.0\\.0\\.1$`));
  assert.equal(fs.existsSync(path.join(STATE_DIR, `127.0.0.1_${port}.token`)), false, 'no token file was written');

  // A master on 127.0.0.1 and the same port; a client told `-a localhost` with the token in its environment.
  const master = await startMaster(undefined, { tcp: true, waitReady: false, args: ['-p', String(port)] });
  t.after(() => master.stop());
  const token = fs.readFileSync(path.join(STATE_DIR, `127.0.0.1_${port}.token`), 'utf8').trim();
  const status = await runCli(['--status', '--json', '-a', 'localhost', '-p', String(port)], { env: { LIVESWAP_TOKEN: token } });
  assert.equal(status.code, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).masterPid, master.pid, 'the client reached the master on 127.0.0.1');
  const api = connect({ address: 'localhost', port });
  assert.equal(api.endpoint, `127.0.0.1:${port}`, 'connect() dials the literal address');
  assert.equal((await api.status()).masterPid, master.pid);
  api.close();
  assert.equal(attacker.connections(), 0, 'nothing dialled the attacker on ::1');
  assert.ok(!attacker.received().includes(token));
  await master.stop();

  // With ::1 free, -a localhost binds both, and says so.
  await attacker.close();
  const both = await startMaster(undefined, { tcp: true, address: 'localhost', waitReady: false });
  t.after(() => both.stop());
  assert.match(both.stderr(), new RegExp(`control service listening on 127\\.0\\.0\\.1:${both.port} \\(.*, also on \\[::1\\]:${both.port}\\)`));
  for (const host of ['127.0.0.1', '::1']) {
    const holder = net.createServer();
    await assert.rejects(new Promise((resolve, reject) => holder.once('error', reject).listen(both.port, host, () => resolve(undefined))), /EADDRINUSE/, `${host} is taken by the master`);
  }
});

/** A unix socket whose owner is alive but accepts nothing (stopped): connecting gives EAGAIN once its backlog is full. */
async function busySocket(t: { after(fn: () => Promise<void>): void }, socketPath: string) {
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen({ path: ${JSON.stringify(socketPath)}, backlog: 1 }, () => console.log('up'))`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(async () => {
    child.kill('SIGKILL');
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve)));
  });
  await new Promise((resolve) => child.stdout.once('data', resolve));
  process.kill(child.pid!, 'SIGSTOP');
  const held: net.Socket[] = [];
  t.after(async () => held.forEach((socket) => socket.destroy()));
  await waitFor('the stopped listener to answer EAGAIN', async () => {
    const socket = net.connect(socketPath);
    held.push(socket);
    return (await new Promise<string>((resolve) => socket.once('connect', () => resolve('connect')).once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? '')))) === 'EAGAIN';
  });
  return child;
}

test('a live control socket that is only busy (EAGAIN) is not taken for stale: the master refuses, the socket stays', async (t) => {
  const socket = path.join(tempDir(), 'control.sock');
  const owner = await busySocket(t, socket);
  const inode = fs.lstatSync(socket).ino;
  await assert.rejects(runMaster({ control: { socket }, log: { level: 'silent' } }), {
    name: 'LiveswapError',
    message: `${socket} exists and connecting to it failed with EAGAIN, not "connection refused": it may be live; remove it yourself if it is not`,
  });
  assert.equal(fs.lstatSync(socket).ino, inode, 'the live socket is still there');
  process.kill(owner.pid!, 'SIGCONT');
});

test('at close a master removes its own socket only: a newer socket at the path survives', async (t) => {
  const socket = path.join(tempDir(), 'control.sock');
  const older = await runMaster({ control: { socket }, log: { level: 'silent' } });
  // Someone (a newer master, after removing this one's) binds the path.
  fs.unlinkSync(socket);
  const newer = net.createServer();
  await new Promise<void>((resolve) => newer.listen(socket, resolve));
  t.after(() => new Promise<void>((resolve) => newer.close(() => resolve())));
  const newerInode = fs.lstatSync(socket).ino;
  await older.master.die();
  await older.stopped;
  assert.equal(fs.lstatSync(socket).ino, newerInode, 'the newer socket is still at the path');
  const reached = await new Promise<boolean>((resolve) => net.connect(socket).once('connect', function (this: net.Socket) { this.destroy(); resolve(true); }).once('error', () => resolve(false)));
  assert.ok(reached, 'and still answers');
});
