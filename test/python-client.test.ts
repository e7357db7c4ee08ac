/**
 * A real client in another language: Python stubs generated from proto/ with
 * Debian's protoc and grpc_python_plugin, run by /usr/bin/python3 with
 * Debian's python3-grpcio (the well-known types from libprotobuf-dev). They drive Start, GetStatus, Broadcast, Upgrade
 * and WatchWorkers over TCP with the token and over the unix socket, and the
 * copyable examples/deploy.py deploys and reports a rollback, and
 * examples/fleet_rollout.py rolls a release over two masters, and the
 * GetStatus client of docs/grpc.md runs as printed there. The packages
 * are required: a missing one fails the test (`.ci/run` installs them).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { codeBlocks, section } from './helpers/markdown.js';
import { freePort } from './helpers/net.js';
import { FIXTURES, fixture, ROOT, tempDir } from './helpers/paths.js';
import { startMaster, type MasterProcess } from './helpers/processes.js';
import { waitFor } from './helpers/wait.js';

const PYTHON = '/usr/bin/python3';
const PROTOC = '/usr/bin/protoc';
const PLUGIN = '/usr/bin/grpc_python_plugin';
/** protoc's well-known types (google/protobuf/struct.proto, timestamp.proto) come with libprotobuf-dev. */
const WELL_KNOWN_TYPES = '/usr/include/google/protobuf/struct.proto';
const PACKAGES = 'apt-get install -y --no-install-recommends python3-grpcio protobuf-compiler-grpc python3-protobuf libprotobuf-dev';

/** Generates the stubs once per run; fails (never skips) without the Debian packages. */
let generated: string | undefined;
function stubs(): string {
  if (generated) return generated;
  for (const file of [PYTHON, PROTOC, PLUGIN, WELL_KNOWN_TYPES]) {
    assert.ok(fs.existsSync(file), `${file} is missing: ${PACKAGES} (.ci/run does this)`);
  }
  try {
    execFileSync(PYTHON, ['-c', 'import grpc, google.protobuf.struct_pb2'], { stdio: 'pipe' });
  } catch (error) {
    assert.fail(`${PYTHON} cannot import grpc and protobuf (${String((error as { stderr?: Buffer }).stderr).trim()}): ${PACKAGES}`);
  }
  const out = tempDir();
  execFileSync(
    PROTOC,
    ['-I', path.join(ROOT, 'proto'), '-I', '/usr/include', `--python_out=${out}`, `--grpc_out=${out}`, `--plugin=protoc-gen-grpc=${PLUGIN}`, 'liveswap/v1/liveswap.proto'],
    { stdio: 'pipe' },
  );
  assert.ok(fs.existsSync(path.join(out, 'liveswap', 'v1', 'liveswap_pb2_grpc.py')));
  generated = out;
  return out;
}

function python(script: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(PYTHON, [script, ...args], { env: { ...process.env, PYTHONPATH: stubs(), ...env }, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const DRIVE = path.join(FIXTURES, 'python', 'drive.py');
const DEPLOY = path.join(ROOT, 'examples', 'deploy.py');
const FLEET = path.join(ROOT, 'examples', 'fleet_rollout.py');

interface Driven {
  without_token: string;
  started_generation?: number;
  status: { generation: number; target: string; states: string[] };
  delivered: number;
  upgraded: { generation: number; target: string; workers: number };
  events: { snapshot?: number; sequence?: number; worker?: number; generation?: number; to?: string }[];
}

function checkUpgradeEvents(events: Driven['events'], newGeneration: number): void {
  assert.ok(events[0]?.snapshot !== undefined, 'the snapshot comes first');
  const transitions = events.slice(1);
  const sequences = transitions.map((e) => e.sequence!);
  assert.deepEqual(sequences, sequences.map((_, i) => events[0]!.snapshot! + 1 + i), 'every transition, in order');
  // Each worker's own moves, in order (the two new workers may boot at once).
  const movesOf = (generation: number) => {
    const byWorker = new Map<number, string[]>();
    for (const e of transitions.filter((e) => e.generation === generation)) {
      byWorker.set(e.worker!, [...(byWorker.get(e.worker!) ?? []), e.to!]);
    }
    return [...byWorker.values()];
  };
  assert.deepEqual(movesOf(newGeneration), [
    ['WORKER_STATE_STARTING', 'WORKER_STATE_READY'],
    ['WORKER_STATE_STARTING', 'WORKER_STATE_READY'],
  ]);
  assert.deepEqual(movesOf(newGeneration - 1), [
    ['WORKER_STATE_DRAINING', 'WORKER_STATE_EXITED'],
    ['WORKER_STATE_DRAINING', 'WORKER_STATE_EXITED'],
  ]);
}

test('Python over TCP with the token: Start, GetStatus, Broadcast, Upgrade and WatchWorkers', async (t) => {
  stubs();
  const appPort = await freePort();
  const master = await startMaster(undefined, { tcp: true, env: { APP_PORT: String(appPort) }, waitReady: false });
  t.after(() => master.stop());
  const token = fs.readFileSync(path.join(process.env.LIVESWAP_STATE_DIR!, `127.0.0.1_${master.port}.token`), 'utf8').trim();

  const run = await python(DRIVE, ['--address', `127.0.0.1:${master.port}`, '--token', token, '--start', fixture('v1.js'), fixture('v2.js')]);
  assert.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout) as Driven;
  assert.equal(out.without_token, 'UNAUTHENTICATED');
  assert.equal(out.started_generation, 1);
  assert.deepEqual(out.status, { generation: 1, target: fixture('v1.js'), states: ['WORKER_STATE_READY', 'WORKER_STATE_READY'] });
  assert.equal(out.delivered, 2);
  // (A Struct is a map: its keys may arrive in either order.)
  const received = /received \{("from":"python","n":42|"n":42,"from":"python")\}/g;
  await waitFor('both workers to print the message', () => (master.stdout().match(received) ?? []).length === 2);
  assert.deepEqual(out.upgraded, { generation: 2, target: fixture('v2.js'), workers: 2 });
  checkUpgradeEvents(out.events, 2);
});

test('Python over the unix socket (mode 0600, no token): GetStatus, Broadcast, Upgrade and WatchWorkers', async (t) => {
  stubs();
  const appPort = await freePort();
  const master = await startMaster(fixture('v1.js'), { env: { APP_PORT: String(appPort) } });
  t.after(() => master.stop());
  assert.equal(fs.statSync(master.socket).mode & 0o777, 0o600);

  const run = await python(DRIVE, ['--socket', master.socket, fixture('v2.js')]);
  assert.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout) as Driven;
  assert.equal(out.without_token, 'OK', 'file permissions guard the socket, not a token');
  assert.deepEqual(out.status.states, ['WORKER_STATE_READY', 'WORKER_STATE_READY']);
  assert.equal(out.delivered, 2);
  assert.deepEqual(out.upgraded, { generation: 2, target: fixture('v2.js'), workers: 2 });
  checkUpgradeEvents(out.events, 2);
});

test('examples/deploy.py finds the token file, deploys, and reports a rollback with the stderr tail', async (t) => {
  stubs();
  const appPort = await freePort();
  const master = await startMaster(fixture('v1.js'), { tcp: true, env: { APP_PORT: String(appPort) } });
  t.after(() => master.stop());
  const address = `127.0.0.1:${master.port}`;

  const ok = await python(DEPLOY, ['--address', address, path.relative(process.cwd(), fixture('v2.js'))]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, new RegExp(`^upgraded to generation 2 \\(${fixture('v2.js').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\) in \\d+ ms: 2 worker\\(s\\) ready\\n$`));

  const rolledBack = await python(DEPLOY, ['--address', address, fixture('boot-throws.js')]);
  assert.equal(rolledBack.code, 1, rolledBack.stderr);
  assert.match(rolledBack.stderr, /^deploy failed: FAILED_PRECONDITION: upgrade rolled back: worker \d+ exited with code 1 before listening: Error: Cannot find module 'x-liveswap-missing-module'/);
  assert.match(rolledBack.stderr, /\n {2}\| .*x-liveswap-missing-module/, 'the failing worker\'s stderr tail, from the trailing metadata');
  assert.equal((await master.client.status()).generation, 2, 'the old release kept serving');

  const noToken = await python(DEPLOY, ['--address', address, fixture('v3.js')], { LIVESWAP_STATE_DIR: tempDir() });
  assert.equal(noToken.code, 4, noToken.stderr);
  assert.match(noToken.stderr, /^deploy failed: UNAUTHENTICATED: missing token/);
});

test('examples/fleet_rollout.py rolls a release over two masters, and rolls the first back when the second fails', async (t) => {
  stubs();
  const masters = [];
  for (const env of [{}, { BREAK_THIS_HOST: '1' }] as Record<string, string>[]) {
    const master = await startMaster(fixture('v1.js'), { tcp: true, forks: 1, env: { APP_PORT: String(await freePort()), ...env } });
    t.after(() => master.stop());
    masters.push(master);
  }
  const [first, second] = masters as [MasterProcess, MasterProcess];
  const hosts = masters.map((m) => `127.0.0.1:${m.port}`).join(',');

  const ok = await python(FLEET, ['--hosts', hosts, fixture('v2.js')]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(ok.stdout.trim().split('\n').map((line) => line.split(': ').slice(0, 2).join(': ')), [
    `127.0.0.1:${first.port}: upgrading`,
    `127.0.0.1:${first.port}: upgraded`,
    `127.0.0.1:${second.port}: upgrading`,
    `127.0.0.1:${second.port}: upgraded`,
    `rollout done: 2 host(s) upgraded to ${fixture('v2.js')}`,
  ]);

  const failed = await python(FLEET, ['--hosts', hosts, fixture('fails-if-marked.js')]);
  assert.equal(failed.code, 1, failed.stderr);
  assert.match(failed.stderr, new RegExp(`rollout failed at 127\\.0\\.0\\.1:${second.port}: upgrade rolled back: .*this host is marked broken`));
  assert.match(failed.stdout, new RegExp(`127\\.0\\.0\\.1:${first.port}: rolled-back: generation 4 \\(\\S+v2\\.js\\)`));
  const [s1, s2] = await Promise.all(masters.map((m) => m.client.status()));
  assert.equal(s1!.target, fixture('v2.js'), 'the first master is back on the release it ran before');
  assert.equal(s2!.target, fixture('v2.js'), 'the second rolled back by itself');
});

test('the Python client of docs/grpc.md runs as printed: GetStatus with the token', async (t) => {
  stubs();
  const blocks = codeBlocks(section(fs.readFileSync(path.join(ROOT, 'docs', 'grpc.md'), 'utf8'), 'From Python')).filter((b) => b.lang === 'python');
  assert.equal(blocks.length, 1, 'one Python client in docs/grpc.md');
  const script = path.join(tempDir(), 'status.py');
  fs.writeFileSync(script, blocks[0]!.text);
  const master = await startMaster(fixture('v1.js'), { tcp: true, env: { APP_PORT: String(await freePort()) } });
  t.after(() => master.stop());
  const address = `127.0.0.1:${master.port}`;
  const token = fs.readFileSync(path.join(process.env.LIVESWAP_STATE_DIR!, `127.0.0.1_${master.port}.token`), 'utf8').trim();

  const run = await python(script, [address], { LIVESWAP_TOKEN: token });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, `generation 1: ${fixture('v1.js')}, 2 worker(s)\n`);

  const refused = await python(script, [address], { LIVESWAP_TOKEN: 'not-the-token' });
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /StatusCode\.UNAUTHENTICATED/);
});
