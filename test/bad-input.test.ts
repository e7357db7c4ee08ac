/**
 * Bad input, table-driven: every RPC with missing, empty, relative, nonexistent,
 * non-file, unreadable and entry-less paths, out-of-range numbers, unknown
 * enum values and oversized payloads; every CLI flag with bad values; and
 * calls to a master that is stopping. Each gets a precise status (or exit
 * code), one line a person can act on, and changes nothing: the same
 * workers (pids), the same generation, before and after.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { connect, type LiveswapClient, type ReadyMode } from '../src/client/index.js';
import { LiveswapServiceClient } from './helpers/grpc-js-stub.js';
import { expectGrpcError, poolState } from './helpers/grpc.js';
import { freePort, get } from './helpers/net.js';
import { CLI, fixture, tempDir } from './helpers/paths.js';
import { runCli, startMaster, type CliResult } from './helpers/processes.js';
import { expectGone, waitFor, withDeadline } from './helpers/wait.js';

const MAX_UINT32 = 4294967295; // what -1 becomes in a client that wraps it into a uint32
const OVER_4_MIB = 'x'.repeat(5 * 1024 * 1024);

/** Paths that are wrong in every way a path can be, in a private directory. */
function badPaths(t: TestContext) {
  const dir = tempDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const emptyDir = path.join(dir, 'empty');
  fs.mkdirSync(emptyDir);
  const unreadable = path.join(dir, 'unreadable.js');
  fs.writeFileSync(unreadable, 'require("http").createServer().listen(0)\n');
  fs.chmodSync(unreadable, 0o000);
  return { dir, emptyDir, unreadable };
}

/** A raw stub call, for requests the typed client refuses to send (a Broadcast without a message). */
function rawCall<Req>(socket: string, method: 'broadcast', request: Req): Promise<ServiceError> {
  const stub = new LiveswapServiceClient(`unix:${socket}`, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    (stub[method] as unknown as (r: Req, md: Metadata, cb: (e: ServiceError | null) => void) => void).call(stub, request, new Metadata(), (error) => {
      stub.close();
      if (error) resolve(error);
      else reject(new Error(`${method} unexpectedly succeeded`));
    });
  });
}

test('every RPC with bad input: the right status, one actionable line, and nothing changed', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 2, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  const { emptyDir, unreadable } = badPaths(t);
  const c = master.client;
  const v2 = fixture('v2.js');
  const before = await c.status();

  const { INVALID_ARGUMENT, FAILED_PRECONDITION, RESOURCE_EXHAUSTED } = status;
  type Case = [string, (client: LiveswapClient) => Promise<unknown>, status, RegExp];
  const targetCases = (rpc: 'start' | 'upgrade'): Case[] =>
    (
      [
        ['missing target', undefined, /^target is required: the absolute path of the module to run$/],
        ['empty target', '', /^target is required/],
        ['relative target', 'v2.js', /^target must be an absolute path, got "v2\.js" \(the CLI and API resolve relative paths for you\)$/],
        ['nonexistent target', '/nonexistent/liveswap/app.js', /^target \/nonexistent\/liveswap\/app\.js does not exist$/],
        ['non-file target', '/dev/null', /^target \/dev\/null is not a regular file$/],
        ['directory without an entry', emptyDir, /is a directory with no entry point \(no package\.json "main" and no index\.js\)$/],
        ['a file used as a directory', `${v2}/index.js`, /does not exist \(a parent is not a directory\)$/],
      ] as const
    ).map(([what, target, message]): Case => [
      `${rpc}: ${what}`,
      (client) => client[rpc]({ target: target as string }),
      INVALID_ARGUMENT,
      message,
    ]);

  const cases: Case[] = [
    ...targetCases('start'),
    ...targetCases('upgrade'),
    ['start: forks 257', (x) => x.start({ target: v2, forks: 257 }), INVALID_ARGUMENT, /^forks must be a whole number from 1 to 256, got 257$/],
    ['start: forks 2^32-1 (a -1 wrapped by a client)', (x) => x.start({ target: v2, forks: MAX_UINT32 }), INVALID_ARGUMENT, /^forks must be a whole number from 1 to 256, got 4294967295$/],
    ['start: absurd ready timeout', (x) => x.start({ target: v2, readyTimeoutMs: MAX_UINT32 }), INVALID_ARGUMENT, /^readyTimeoutMs must be a whole number of milliseconds from 1 to 2147483647, got 4294967295$/],
    ['start: unknown ready mode', (x) => x.start({ target: v2, readyMode: 99 as ReadyMode }), INVALID_ARGUMENT, /^ready_mode 99 is not a ReadyMode: use 0 \(default\), 1 \(listening\), 2 \(message\) or 3 \(first-listen\)$/],
    ['start: valid, but workers are running', (x) => x.start({ target: v2, forks: 3 }), FAILED_PRECONDITION, /^2 worker\(s\) already run .*v1\.js; use Upgrade to change the code$/],
    ['upgrade: absurd drain timeout', (x) => x.upgrade({ target: v2, drainTimeoutMs: MAX_UINT32 }), INVALID_ARGUMENT, /^drainTimeoutMs must be a whole number of milliseconds from 1 to 2147483647/],
    ['upgrade: absurd ready timeout', (x) => x.upgrade({ target: v2, readyTimeoutMs: 2147483648 }), INVALID_ARGUMENT, /^readyTimeoutMs must be a whole number of milliseconds/],
    ['upgrade: unknown ready mode', (x) => x.upgrade({ target: v2, readyMode: -5 as ReadyMode }), INVALID_ARGUMENT, /^ready_mode -5 is not a ReadyMode/],
    ['upgrade: hook data over 4 MiB', (x) => x.upgrade({ target: v2, hookData: OVER_4_MIB }), RESOURCE_EXHAUSTED, /larger than max/],
    ['die: absurd drain timeout', (x) => x.die({ drainTimeoutMs: MAX_UINT32 }), INVALID_ARGUMENT, /^drainTimeoutMs must be a whole number of milliseconds/],
    ['broadcast: over 4 MiB', (x) => x.broadcast(OVER_4_MIB), RESOURCE_EXHAUSTED, /larger than max/],
    ['broadcast: not JSON (refused by the client)', (x) => x.broadcast(() => 1), INVALID_ARGUMENT, /^the message must be a JSON value/],
  ];
  // Unreadable: chmod 000 does not stop root; as root, the next test covers it with a master that honours file modes.
  if (process.getuid?.() !== 0) {
    cases.push(['upgrade: unreadable target', (x) => x.upgrade({ target: unreadable }), INVALID_ARGUMENT, /^target .*unreadable\.js is not readable \(permission denied\)$/]);
  }

  for (const [what, run, code, message] of cases) {
    const error = await expectGrpcError(run(c), code, message).catch((e: Error) => {
      throw new Error(`${what}: ${e.message}`);
    });
    assert.doesNotMatch(error.message, /\n/, `${what}: one line`);
    assert.equal(poolState(await c.status()), poolState(before), `${what}: nothing changed`);
  }
  const missing = await rawCall(master.socket, 'broadcast', {});
  assert.equal(missing.code, INVALID_ARGUMENT);
  assert.equal(missing.details, 'message is required: any JSON value (a string, number, bool, null, list or object)');

  assert.equal(poolState(await c.status()), poolState(before));
  assert.deepEqual(master.workerPids().sort(), before.workers.map((w) => w.pid).sort(), 'no worker was ever forked');
  assert.equal((await get(port)).body, 'v1');
  t.diagnostic(`${cases.length + 1} bad requests, state unchanged`);
});

/**
 * chmod 000 does not stop root: root reads through its CAP_DAC_OVERRIDE and
 * CAP_DAC_READ_SEARCH capabilities. So when the tests run as root, the master
 * and the CLI run as root without those two (setpriv, from util-linux), which
 * makes them honour file modes like any other user, and still reach every
 * path root owns.
 */
function spawnReader(args: string[], stdio: ('ignore' | 'pipe')[]) {
  const asRoot = process.getuid?.() === 0;
  const drop = ['--inh-caps=-dac_override,-dac_read_search', '--bounding-set=-dac_override,-dac_read_search', '--'];
  return asRoot
    ? spawn('setpriv', [...drop, process.execPath, CLI, ...args], { stdio: stdio as never })
    : spawn(process.execPath, [CLI, ...args], { stdio: stdio as never });
}

test('an unreadable target: INVALID_ARGUMENT "not readable" from the master, exit 1 from the CLI', async (t) => {
  const { unreadable } = badPaths(t);
  const port = await freePort();
  const child = spawnReader(['-s', '-p', String(port)], ['ignore', 'ignore', 'pipe']);
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.after(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  await waitFor('the idle master to listen', () => /control service listening/.test(stderr), { timeoutMs: 10_000 }).catch((error: Error) => {
    throw new Error(`${error.message}\n${stderr}`);
  });
  const client = connect({ port });
  t.after(() => client.close());
  const before = await client.status();
  for (const rpc of ['start', 'upgrade'] as const) {
    await expectGrpcError(client[rpc]({ target: unreadable }), status.INVALID_ARGUMENT, /^target .*unreadable\.js is not readable \(permission denied\)$/);
  }
  assert.equal(poolState(await client.status()), poolState(before));
  assert.equal((await client.status()).workers.length, 0);
  // The CLI says the same before it starts anything (`-s` checks the target first).
  const cli = await new Promise<CliResult>((resolve) => {
    const run = spawnReader(['-s', unreadable, '-p', String(port)], ['ignore', 'pipe', 'pipe']);
    let out = '';
    let err = '';
    run.stdout!.on('data', (chunk) => (out += chunk));
    run.stderr!.on('data', (chunk) => (err += chunk));
    run.on('close', (code) => resolve({ code, stdout: out, stderr: err }));
  });
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /^liveswap: target .*unreadable\.js is not readable \(permission denied\)\n$/);
  await client.die();
  await withDeadline('the idle master to exit', exited, 5000);
});

test('every CLI flag with a bad value: exit 2 (usage) or 1 (the master refused the path), one line, no stack trace, nothing changed', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 2, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  const { emptyDir } = badPaths(t);
  const before = await master.client.status();
  const via = master.via;
  const durationError = (flag: string) => new RegExp(`^liveswap: --${flag} must be a whole number of milliseconds from 1 to 2147483647, got `);

  // (More values of each flag: cli.test.ts. One process each costs ~0.5 s of CPU, so a few per flag here.)
  const cases: [string[], number, RegExp][] = [
    // Paths: usage errors when missing or empty; the master's verdict (exit 1) when wrong.
    [['-u', '', ...via], 2, /^liveswap: -u needs the path of the new module$/],
    [['-u', '/nonexistent/app.js', ...via], 1, /^liveswap: target \/nonexistent\/app\.js does not exist$/],
    [['-u', '/dev/null', ...via], 1, /^liveswap: target \/dev\/null is not a regular file$/],
    [['-u', emptyDir, ...via], 1, /is a directory with no entry point/],
    [['-u', `${fixture('v2.js')}/x.js`, ...via], 1, /a parent is not a directory\)$/],
    [['-s', '/dev/null', '-p', '0'], 1, /^liveswap: target \/dev\/null is not a regular file$/],
    [['-s', fixture('v1.js'), '-p', '0', '--pre-upgrade', emptyDir], 1, /^liveswap: pre-upgrade hook .* is a directory with no entry point/],
    // Forks, ports, addresses.
    [['-s', fixture('v1.js'), '-p', '0', '-f', ''], 2, /^liveswap: --forks must be a whole number from 1 to 256, got /],
    [['-s', fixture('v1.js'), '-p', '0', '-f', '1e9'], 2, /^liveswap: --forks must be a whole number from 1 to 256, got 1000000000$/],
    [['-s', '-p', '-1'], 2, /^liveswap: --port must be a whole number from 0 to 65535, got -1$/],
    [['--status', '-p', '0'], 2, /^liveswap: --port must be a whole number from 1 to 65535, got 0$/],
    [['--status', '-p', 'abc'], 2, /^liveswap: --port must be a whole number from 1 to 65535, got NaN$/],
    [['--status', '-a', ''], 2, /^liveswap: --address must be an IP address \(like 127\.0\.0\.1 or ::1\) or localhost, got ""$/],
    [['--status', '-a', '127.0.0.1:3000'], 2, /^liveswap: --address must be an IP address/],
    // Durations.
    [['-u', fixture('v2.js'), ...via, '--ready-timeout', '0'], 2, durationError('ready-timeout')],
    [['-u', fixture('v2.js'), ...via, '--drain-timeout', '1.5'], 2, durationError('drain-timeout')],
    [['-s', fixture('v1.js'), '-p', '0', '--pre-upgrade', fixture('hook-allow.js'), '--hook-timeout', 'abc'], 2, durationError('hook-timeout')],
    [['-d', ...via, '--drain-timeout', '2147483648'], 2, durationError('drain-timeout')],
    // Choices, messages, options where they do not apply.
    [['-s', '-p', '0', '--log-format', 'xml'], 2, /^liveswap: Invalid values: Argument: log-format, Given: "xml"/],
    [['--message-json', '', ...via], 2, /^liveswap: --message-json is not valid JSON/],
    [['-k', ...via, '--force'], 2, /^liveswap: --force does not apply to --kill \(only to --die\)$/],
  ];

  // Independent one-shot processes: six at a time.
  const results: CliResult[] = [];
  for (let i = 0; i < cases.length; i += 6) {
    results.push(...(await Promise.all(cases.slice(i, i + 6).map(([args]) => runCli(args)))));
  }
  cases.forEach(([args, code, message], i) => {
    const result = results[i]!;
    const label = `liveswap ${args.map((a) => (a === '' ? "''" : a)).join(' ')}`;
    assert.equal(result.code, code, `${label}: exit code (stderr: ${result.stderr})`);
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `${label}: one line on stderr, got:\n${result.stderr}`);
    assert.doesNotMatch(result.stderr, /\n\s+at /, `${label}: no stack trace`);
    assert.match(lines[0]!, message, label);
  });
  assert.equal(poolState(await master.client.status()), poolState(before), 'nothing changed');
  assert.equal((await get(port)).body, 'v1');
  t.diagnostic(`${cases.length} bad command lines`);
});

test('calls to a master that is stopping: UNAVAILABLE "the master is shutting down"; GetStatus still answers', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 1, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  // A slow request keeps the drain going for a while: room for every call below and a CLI start-up, on a loaded machine too.
  const inFlight = get(port, '/slow?ms=5000', undefined, 30_000);
  await waitFor('the app to answer', async () => (await get(port)).body === 'v1');
  const dying = master.client.die({ drainTimeoutMs: 20_000 });
  await waitFor('the master to be stopping', async () => (await master.client.status()).operation === 'die');

  const c = master.client;
  const shutting = /^(start|upgrade|kill )?.*the master is shutting down$/;
  await expectGrpcError(c.start({ target: fixture('v2.js') }), status.UNAVAILABLE, shutting);
  await expectGrpcError(c.upgrade({ target: fixture('v2.js') }), status.UNAVAILABLE, shutting);
  await expectGrpcError(c.kill(), status.UNAVAILABLE, shutting);
  await expectGrpcError(c.broadcast('hello'), status.UNAVAILABLE, shutting);
  await expectGrpcError((async () => {
    for await (const item of c.watch()) void item;
  })(), status.UNAVAILABLE, shutting);
  const cli = await runCli(['-u', fixture('v2.js'), ...master.via]);
  assert.equal(cli.code, 1);
  assert.equal(cli.stderr, 'liveswap: the master is shutting down\n');
  // A second Die joins the first.
  assert.deepEqual(await c.die(), await dying);
  assert.equal((await inFlight).body, 'v1');
  assert.equal(await withDeadline('the master to exit', master.exited, 10_000), 0);
  await expectGone([master.pid, ...master.workerPids()]);
});
