/**
 * The unix control socket is 0600 from the moment anyone can reach it, and
 * binding it leaves the process's umask alone: the umask is process-wide, so
 * a file the host app creates or a child it spawns while the socket binds
 * must get its usual mode. The socket is bound in a private (0700) directory
 * next to the requested path and moved into place.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dc from 'node:diagnostics_channel';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { connect } from '../src/client/index.js';
import { runMaster, type RunningMaster } from '../src/run.js';
import { tempDir } from './helpers/paths.js';

test('binding the control socket leaves the umask alone: a file and a child made meanwhile get their usual mode; the socket ends up 0600 at the path', async (t) => {
  const previousUmask = process.umask(0o022);
  t.after(() => process.umask(previousUmask));
  const dir = tempDir();
  const socket = path.join(dir, 'control.sock');
  const appDir = tempDir();

  // Node reports each listen() as it completes, before the server's callback runs: this
  // is code of the host process running while the control socket is being bound.
  const madeMeanwhile: { file: number; childUmask: string }[] = [];
  const onListen = () => {
    const file = path.join(appDir, `made-during-bind-${madeMeanwhile.length}`);
    fs.writeFileSync(file, 'app data');
    madeMeanwhile.push({
      file: fs.statSync(file).mode & 0o777,
      childUmask: execFileSync('sh', ['-c', 'umask'], { encoding: 'utf8' }).trim(),
    });
  };
  dc.subscribe('tracing:net.server.listen:asyncStart', onListen);
  let running: RunningMaster;
  try {
    running = await runMaster({ control: { socket }, log: { level: 'silent' } });
  } finally {
    dc.unsubscribe('tracing:net.server.listen:asyncStart', onListen);
  }
  t.after(() => running.master.die());

  assert.equal(madeMeanwhile.length, 1, 'the control socket was bound once');
  assert.deepEqual(madeMeanwhile[0], { file: 0o644, childUmask: '0022' }, 'the process umask was untouched during the bind');
  const stat = fs.lstatSync(socket);
  assert.ok(stat.isSocket());
  assert.equal(stat.mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(dir), ['control.sock'], 'nothing is left next to it');
  assert.equal((await connectedStatus(socket)).masterPid, process.pid);

  await running.master.die();
  await running.stopped;
  assert.deepEqual(fs.readdirSync(dir), [], 'the socket is removed at close');
});

test('a stale control socket is replaced; a file that is not a socket is refused and left alone', async (t) => {
  const dir = tempDir();
  const socket = path.join(dir, 'control.sock');
  await leaveStaleSocket(socket);

  const running = await runMaster({ control: { socket }, log: { level: 'silent' } });
  t.after(async () => {
    await running.master.die();
    await running.stopped;
  });
  assert.equal(fs.lstatSync(socket).mode & 0o777, 0o600);
  assert.equal((await connectedStatus(socket)).masterPid, process.pid);

  const notASocket = path.join(dir, 'notes.txt');
  fs.writeFileSync(notASocket, 'keep me');
  await assert.rejects(runMaster({ control: { socket: notASocket }, log: { level: 'silent' } }), /exists and is not a socket; refusing to replace it/);
  assert.equal(fs.readFileSync(notASocket, 'utf8'), 'keep me');
  assert.deepEqual(fs.readdirSync(dir).sort(), ['control.sock', 'notes.txt'], 'no private directory is left behind');
});

test('a socket path that cannot be bound is refused with one line that names it', async () => {
  const dir = tempDir();
  const tooLong = path.join(dir, `${'x'.repeat(120)}.sock`);
  await assert.rejects(runMaster({ control: { socket: tooLong }, log: { level: 'silent' } }), {
    name: 'LiveswapError',
    message: `socket path ${tooLong} is ${Buffer.byteLength(tooLong)} bytes long; a unix socket path may have at most 107`,
  });
  const nowhere = path.join(dir, 'no-such-dir', 'control.sock');
  await assert.rejects(runMaster({ control: { socket: nowhere }, log: { level: 'silent' } }), {
    name: 'LiveswapError',
    message: `cannot listen on unix:${nowhere}: no such file or directory`,
  });
  assert.deepEqual(fs.readdirSync(dir), [], 'nothing was created');
});

/** A socket file nobody listens on, as a SIGKILLed master leaves behind. */
async function leaveStaleSocket(socketPath: string): Promise<void> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  // Closing a unix server unlinks its path: a hard link keeps the file, as after a SIGKILL.
  fs.linkSync(socketPath, `${socketPath}.keep`);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  fs.renameSync(`${socketPath}.keep`, socketPath);
}

async function connectedStatus(socket: string) {
  const client = connect({ socket });
  try {
    return await client.status();
  } finally {
    client.close();
  }
}
