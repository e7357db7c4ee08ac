/**
 * Issue 19, the state directory and the token files, each attack played from
 * this account against a real master:
 * - the state directory was a symbolic link the attacker controlled: swapped
 *   after the token was written, to a directory holding a FIFO, it hung the
 *   client and the master's shutdown (blocked in readFileSync), and let the
 *   attacker feed clients any token;
 * - a directory on the way to it that others could change passed the check.
 * The state directory is now refused unless it is a real directory of ours on
 * a path nobody else can change; a token file is opened without following a
 * link or blocking, and used only if it is a regular 0600 file of ours.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from './helpers/net.js';
import { fixture, tempDir } from './helpers/paths.js';
import { runCli, startMaster } from './helpers/processes.js';
import { withDeadline } from './helpers/wait.js';

const NOBODY = 65534;

function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
  return lines[0]!;
}

/** `liveswap -s` with this state directory: must fail before binding, with one line matching `message`. */
async function expectStateDirRefused(stateDir: string, message: RegExp): Promise<void> {
  const result = await runCli(['-s', fixture('v1.js'), '-p', '0', '--state-dir', stateDir], { env: { APP_PORT: String(await freePort()) } });
  assert.notEqual(result.code, 0, result.stderr);
  assert.match(result.stderr.trimEnd().split('\n').at(-1)!, message);
  assert.doesNotMatch(result.stderr, /control service listening/);
}

test('a symlinked state directory, or one on a path other users can change, is refused before anything binds', async () => {
  const base = tempDir();
  const real = path.join(base, 'real');
  fs.mkdirSync(real, { mode: 0o700 });
  const link = path.join(base, 'link');
  fs.symlinkSync(real, link);
  await expectStateDirRefused(link, new RegExp(`state directory ${link} is a symbolic link; give the real directory \\(${real}\\)`));

  // A parent anyone can write to, not sticky: another user could rename our directory away and put theirs in its place.
  const shared = path.join(base, 'shared');
  fs.mkdirSync(shared);
  fs.chmodSync(shared, 0o777);
  await expectStateDirRefused(path.join(shared, 'state'), new RegExp(`${shared}, on the way to the state directory .* is writable by other users \\(mode 777\\) and not sticky`));

  // A parent that belongs to another user (who could do the same).
  const theirs = path.join(base, 'theirs');
  fs.mkdirSync(theirs, { mode: 0o755 });
  fs.chownSync(theirs, NOBODY, NOBODY);
  await expectStateDirRefused(path.join(theirs, 'state'), new RegExp(`${theirs}, on the way to the state directory .* belongs to another user \\(uid ${NOBODY}\\)`));

  // A link on the way that is ours, to a directory on a safe path, is fine (/var/run → /run is such a link).
  const sticky = path.join(base, 'sticky');
  fs.mkdirSync(sticky);
  fs.chmodSync(sticky, 0o1777);
  fs.symlinkSync(sticky, path.join(base, 'to-sticky'));
  const master = await startMaster(undefined, { tcp: true, waitReady: false, args: ['--state-dir', path.join(base, 'to-sticky', 'state')] });
  await master.stop();
});

test('the token file swapped for a FIFO: the client does not hang and says why; the master stops at once and leaves it', async (t) => {
  const stateDir = path.join(tempDir(), 'state');
  // Its helper client looks in the default state directory, so it never reads the FIFO.
  const master = await startMaster(undefined, { tcp: true, waitReady: false, args: ['--state-dir', stateDir] });
  t.after(() => master.stop());
  const file = path.join(stateDir, `127.0.0.1_${master.port}.token`);
  const liveToken = fs.readFileSync(file, 'utf8').trim();

  const fifo = path.join(stateDir, 'fifo');
  execFileSync('mkfifo', ['-m', '600', fifo]);
  fs.renameSync(fifo, file);
  const status = await runCli(['--status', '-p', String(master.port), '--state-dir', stateDir], { timeoutMs: 20_000 });
  assert.equal(status.code, 1, status.stderr);
  assert.equal(oneLine(status.stderr), `liveswap: refusing the token file ${file}: it is not a regular file`);

  // Die with the real token: the master's clean-up finds a FIFO where its token was, leaves it, and exits.
  const die = await runCli(['-d', '-p', String(master.port)], { env: { LIVESWAP_TOKEN: liveToken } });
  assert.equal(die.code, 0, die.stderr);
  await withDeadline('the master to exit with a FIFO at its token path', master.exited, 15_000);
  assert.ok(fs.lstatSync(file).isFIFO(), 'the FIFO is left alone');
});

test('a token file that is a link, another user\'s, or readable by others is refused: the client sends nothing', async (t) => {
  const stateDir = path.join(tempDir(), 'state');
  const master = await startMaster(undefined, { tcp: true, waitReady: false, args: ['--state-dir', stateDir], clientOptions: { stateDir } });
  t.after(() => master.stop());
  const file = path.join(stateDir, `127.0.0.1_${master.port}.token`);
  const token = fs.readFileSync(file, 'utf8').trim();
  const status = () => runCli(['--status', '-p', String(master.port), '--state-dir', stateDir]);

  // The attacker's token, behind a link at the token file's path.
  const planted = path.join(tempDir(), 'planted.token');
  fs.writeFileSync(planted, 'attacker-chosen-token\n', { mode: 0o600 });
  fs.renameSync(file, `${file}.real`);
  fs.symlinkSync(planted, file);
  let result = await status();
  assert.equal(result.code, 1);
  assert.equal(oneLine(result.stderr), `liveswap: refusing the token file ${file}: it is a symbolic link`);
  fs.unlinkSync(file);

  // Another user's file (they could have written any token into it), and our own file readable by others.
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
  fs.chownSync(file, NOBODY, NOBODY);
  result = await status();
  assert.equal(oneLine(result.stderr), `liveswap: refusing the token file ${file}: it belongs to another user (uid ${NOBODY})`);
  fs.chownSync(file, process.getuid!(), process.getgid!());
  fs.chmodSync(file, 0o644);
  result = await status();
  assert.equal(oneLine(result.stderr), `liveswap: refusing the token file ${file}: other users can read or write it (mode 644); chmod 600 it`);
  assert.doesNotMatch(master.stderr(), /refused/, 'no call reached the master: the client sent no token at all');

  fs.chmodSync(file, 0o600);
  result = await status();
  assert.equal(result.code, 0, result.stderr);
});
