/**
 * The CLI on bad input: one line on stderr, a non-zero exit code, never a
 * stack trace, and nothing started or changed.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { freePort, get } from './helpers/net.js';
import { FIXTURES, fixture, tempDir } from './helpers/paths.js';
import { runCli, startMaster } from './helpers/processes.js';
import { expectGone } from './helpers/wait.js';

function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  return lines[0]!;
}

test('no master: exit 3 and "no master at …"', async () => {
  const port = await freePort();
  const tcp = await runCli(['--status', '-p', String(port)]);
  assert.equal(tcp.code, 3);
  assert.equal(oneLine(tcp.stderr), `liveswap: no master at 127.0.0.1:${port} (connection refused)`);

  // Something that is not a liveswap master on the port (here: a plain HTTP server).
  const http = await import('node:http');
  const stranger = http.createServer((_req, res) => res.end('hi'));
  await new Promise<void>((resolve) => stranger.listen(0, '127.0.0.1', resolve));
  const strangerPort = (stranger.address() as net.AddressInfo).port;
  const wrong = await runCli(['--status', '-p', String(strangerPort)]);
  stranger.close();
  assert.equal(wrong.code, 3);
  assert.equal(
    oneLine(wrong.stderr),
    `liveswap: no master at 127.0.0.1:${strangerPort} (something else is listening there: it does not speak gRPC)`,
  );

  const socket = path.join(tempDir(), 'none.sock');
  const unix = await runCli(['-u', fixture('v2.js'), '--socket', socket]);
  assert.equal(unix.code, 3);
  assert.equal(oneLine(unix.stderr), `liveswap: no master at unix:${socket} (no such socket)`);
});

test('usage errors: exit 2, one line', async () => {
  const none = await runCli([]);
  assert.equal(none.code, 2);
  assert.match(oneLine(none.stderr), /^liveswap: no command given/);

  const two = await runCli(['-k', '-d']);
  assert.equal(two.code, 2);
  assert.equal(oneLine(two.stderr), 'liveswap: give one command at a time, got --kill and --die');

  const unknown = await runCli(['--frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(oneLine(unknown.stderr), /^liveswap: Unknown argument: frobnicate/);

  const badJson = await runCli(['--message-json', '{nope']);
  assert.equal(badJson.code, 2);
  assert.match(oneLine(badJson.stderr), /^liveswap: --message-json is not valid JSON/);

  const misplaced = await runCli(['-u', 'x.js', '-f', '4']);
  assert.equal(misplaced.code, 2);
  assert.equal(oneLine(misplaced.stderr), 'liveswap: --forks does not apply to --upgrade (only to --start)');

  const badChoice = await runCli(['-u', 'x.js', '--ready-mode', 'soon']);
  assert.equal(badChoice.code, 2);
  assert.match(oneLine(badChoice.stderr), /^liveswap: Invalid values: Argument: ready-mode, Given: "soon"/);

  for (const [args, message] of [
    [['--status', '-p', '99999'], 'liveswap: --port must be a whole number from 1 to 65535, got 99999'],
    [['--status', '-a', 'garbage'], 'liveswap: --address must be an IP address (like 127.0.0.1 or ::1) or localhost, got "garbage"'],
    [['--status', '--socket', ''], 'liveswap: --socket needs a path'],
    [['--status', '--socket', '/x.sock', '-p', '4000'], 'liveswap: --socket and -p/-a are alternatives: give one or the other'],
    [['-d', '--drain-timeout', '-1'], 'liveswap: --drain-timeout must be a whole number of milliseconds from 1 to 2147483647, got -1'],
    [['-m'], `liveswap: -m needs a message (to send an empty string, use --message-json '""')`],
    [['-s', 'v1.js', '--hook-timeout', '500'], 'liveswap: --hook-timeout needs --pre-upgrade (there is no hook to time)'],
  ] as const) {
    const result = await runCli([...args]);
    assert.equal(result.code, 2, args.join(' '));
    assert.equal(oneLine(result.stderr), message);
  }

  const noFile = await runCli(['-u']);
  assert.equal(noFile.code, 2);
  assert.equal(oneLine(noFile.stderr), 'liveswap: -u needs the path of the new module');

  const help = await runCli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--upgrade/);
});

test('-s with a bad target or settings: exit 1, one line, nothing left running', async () => {
  const port = String(await freePort());
  const missing = await runCli(['-s', 'nope.js', '-p', port], { cwd: FIXTURES });
  assert.equal(missing.code, 1);
  // Checked before anything binds or forks: the error is all there is.
  assert.match(oneLine(missing.stderr), /^liveswap: target .*test\/fixtures\/nope\.js does not exist$/);

  const boot = await runCli(['-s', 'boot-throws.js', '-p', port], { cwd: FIXTURES });
  assert.equal(boot.code, 1);
  assert.match(
    boot.stderr.trimEnd().split('\n').at(-1)!,
    /^liveswap: start failed: worker \d+ exited with code 1 before listening: Error: Cannot find module 'x-liveswap-missing-module'/,
  );
  const pids = [...boot.stderr.matchAll(/\(pid (\d+),/g)].map((m) => Number(m[1]));
  assert.ok(pids.length >= 2, 'the master logged its workers');
  await expectGone(pids);

  // Bad values are usage errors: exit 2, one line, before anything starts.
  for (const forks of ['0', '-1', '1.5', '100000', 'abc']) {
    const bad = await runCli(['-s', 'v1.js', '-p', port, '-f', forks], { cwd: FIXTURES });
    assert.equal(bad.code, 2, `-f ${forks}`);
    assert.match(oneLine(bad.stderr), /^liveswap: --forks must be a whole number from 1 to 256, got /);
  }

  const badPort = await runCli(['-s', 'v1.js', '-p', '70000'], { cwd: FIXTURES });
  assert.equal(badPort.code, 2);
  assert.equal(oneLine(badPort.stderr), 'liveswap: --port must be a whole number from 0 to 65535, got 70000');

  const badAddress = await runCli(['-s', 'v1.js', '-a', 'not-an-ip'], { cwd: FIXTURES });
  assert.equal(badAddress.code, 2);
  assert.match(oneLine(badAddress.stderr), /^liveswap: --address must be an IP address/);
});

test('-s on a control port already in use: exit 1, one line', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => blocker.close());
  const port = (blocker.address() as net.AddressInfo).port;
  const result = await runCli(['-s', 'v1.js', '-p', String(port)], { cwd: FIXTURES });
  assert.equal(result.code, 1);
  assert.match(
    result.stderr.trimEnd().split('\n').at(-1)!,
    new RegExp(`^liveswap: cannot listen on 127\\.0\\.0\\.1:${port}: address already in use`),
  );
});

test('relative paths resolve against the caller, and --json prints the result', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  const result = await runCli(['-u', './v2.js', '--json', ...master.via], { cwd: FIXTURES });
  assert.equal(result.code, 0, result.stderr);
  const body = JSON.parse(result.stdout);
  assert.equal(body.target, fixture('v2.js'));
  assert.equal(body.generation, 2);
  assert.equal(body.workers.length, 2);
  assert.equal((await get(port)).body, 'v2');

  const status = await runCli(['--status', ...master.via]);
  assert.equal(status.code, 0);
  assert.match(status.stdout, /generation 2: .*v2\.js/);
  assert.match(status.stdout, /ID\s+PID\s+STATE\s+GEN\s+UPTIME\s+RESTARTS\s+TARGET/);
  assert.equal((status.stdout.match(/ ready /g) ?? []).length, 2);
});

test('the control socket is created with mode 0600', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 1, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  const fs = await import('node:fs');
  assert.equal(fs.statSync(master.socket).mode & 0o777, 0o600);
});

test('--log-format json: every master log line is one JSON object', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 1, env: { APP_PORT: String(port) }, args: ['--log-format', 'json'] });
  t.after(() => master.stop());
  const lines = master.stderr().trimEnd().split('\n');
  assert.ok(lines.length >= 4);
  for (const line of lines) {
    const entry = JSON.parse(line) as { level: string; message: string; timestamp: string };
    assert.equal(typeof entry.message, 'string');
    assert.ok(['info', 'warn', 'error'].includes(entry.level));
    assert.ok(!Number.isNaN(Date.parse(entry.timestamp)));
  }
  assert.ok(lines.some((line) => JSON.parse(line).message.includes('starting → ready: listening on 127.0.0.1:')));
});
