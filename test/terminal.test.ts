/**
 * A foreground master in a terminal that closes: the kernel sends it SIGHUP,
 * as to any shell job, and it stops gracefully (drains, exits 0, leaves no
 * worker behind) instead of reloading and running on with dead stdio. A
 * SIGHUP while its terminal is still open is a reload, as it is for a
 * master with no terminal at all (signals.test.ts).
 *
 * The terminal is a real pseudo-terminal: python3's pty module makes the
 * master a session leader with the pty as its controlling terminal and
 * stdio, relays what it prints, and closes the pty's master side on request,
 * which is what a terminal emulator does when its window closes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { connect } from '../src/client/index.js';
import { freePort, get } from './helpers/net.js';
import { CLI, fixture, tempDir } from './helpers/paths.js';
import { expectGone, isAlive, waitFor, withDeadline } from './helpers/wait.js';

const PTY_DRIVER = String.raw`
import os, pty, select, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
sys.stderr.write('pid %d\n' % pid)
sys.stderr.flush()
stdin = sys.stdin.fileno()
while True:
    ready, _, _ = select.select([fd, stdin], [], [])
    if fd in ready:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b''
        if not data:
            break
        os.write(1, data)
    if stdin in ready and (b'hangup' in os.read(stdin, 100)):
        break
os.close(fd)  # the terminal goes away
_, status = os.waitpid(pid, 0)
code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
signal = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
sys.stderr.write('exit %s %s\n' % (code, signal))
`;

/** Runs `argv` as a session leader on a fresh pseudo-terminal. */
function inTerminal(t: { after(fn: () => Promise<void> | void): void }, argv: string[], env: Record<string, string>) {
  const driver = spawn('python3', ['-c', PTY_DRIVER, ...argv], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let screen = '';
  let report = '';
  driver.stdout.on('data', (chunk) => (screen += chunk));
  driver.stderr.on('data', (chunk) => (report += chunk));
  const driverExited = new Promise<void>((resolve) => driver.once('exit', () => resolve()));
  t.after(async () => {
    if (isAlive(driver.pid!)) driver.kill('SIGKILL');
    await driverExited;
  });
  return {
    screen: () => screen,
    pid: () => waitFor('the pid of the process in the terminal', () => Number(/^pid (\d+)$/m.exec(report)?.[1]) || undefined),
    /** Closes the terminal. */
    hangUp: () => driver.stdin.write('hangup\n'),
    /** How the process in the terminal ended: its exit code, or the signal that killed it. */
    ended: async () => {
      await driverExited;
      const [, code, signal] = /^exit (\S+) (\S+)$/m.exec(report) ?? [];
      return { code: code === 'None' ? null : Number(code), signal: signal === 'None' ? null : Number(signal) };
    },
  };
}

test('closing the terminal of a foreground master drains it and exits 0; SIGHUP while the terminal is open reloads', async (t) => {
  const port = await freePort();
  const socket = path.join(tempDir(), 'control.sock');
  const terminal = inTerminal(t, [process.execPath, CLI, '-s', fixture('v1.js'), '--socket', socket, '-f', '2'], { APP_PORT: String(port) });
  const masterPid = await terminal.pid();
  t.after(() => {
    if (isAlive(masterPid)) process.kill(masterPid, 'SIGKILL'); // safety net; the assertions below still fail
  });
  await waitFor('the master to come up', () => /master pid \d+ up/.test(terminal.screen()), { timeoutMs: 20_000 });
  const client = connect({ socket });
  t.after(() => client.close());
  const first = await client.status();

  // `kill -HUP` with the terminal open: a reload.
  process.kill(masterPid, 'SIGHUP');
  await waitFor('the reload to finish', () => /SIGHUP reload done: generation 2 on 2 worker\(s\)/.test(terminal.screen()), { timeoutMs: 20_000 });
  const reloaded = await client.status();
  assert.equal(reloaded.generation, 2);
  const workers = [...first.workers, ...reloaded.workers].map((w) => w.pid);

  // Closing the terminal: a graceful stop. The request in flight is answered.
  const inFlight = get(port, '/slow?ms=1500&tag=hangup');
  await waitFor('the slow request to be in a worker', () => terminal.screen().includes('slow request hangup started'));
  terminal.hangUp();
  assert.equal((await inFlight).body, 'v1', 'the in-flight request finished: the workers were drained, not killed');
  assert.deepEqual(await withDeadline('the master to exit', terminal.ended(), 30_000), { code: 0, signal: null });
  await expectGone([masterPid, ...workers]);
  assert.equal(fs.existsSync(socket), false, 'the control socket was removed');
});
