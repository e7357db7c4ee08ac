/**
 * The package as a user gets it: `npm pack`, the tarball installed into an
 * empty project, then from that project `npx liveswap -s` runs an app,
 * `npx liveswap -u` upgrades it, `-d` stops it, and an ES module runs
 * `import liveswap, { connect } from 'liveswap'`. Every process started is
 * checked gone at the end.
 *
 * It packs with --ignore-scripts the dist/ this suite runs on (prepack would
 * build it all again); that packing builds first is checked on package.json's
 * scripts and on scripts/prepare.mjs. The install takes the dependencies from
 * npm's cache where it has them (--prefer-offline), else from the registry.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { accepts, freePort, get } from './helpers/net.js';
import { fixture, ROOT, tempDir } from './helpers/paths.js';
import { childPids, executable } from './helpers/proc-tree.js';
import { expectGone, GiveUp, isAlive, waitFor, withDeadline } from './helpers/wait.js';

/** Where packages belong in the tarball: the runtime, its contract and the README (LICENSE if there is one). */
const SHIPPED = /^(package\.json|README\.md|LICENSE(\.\w+)?|bin\/.+|dist\/src\/.+|dist\/proto\/.+|proto\/.+)$/;
/** What the installed product runs: the CLI, its bundle, the master, the API, the descriptors for reflection. */
const NEEDED = [
  'bin/liveswap.cjs',
  'dist/src/cli/main.bundle.cjs',
  'dist/src/cli/compile-cache.cjs',
  'dist/src/cli/start.js',
  'dist/src/index.js',
  'dist/src/index.d.ts',
  'dist/src/worker/main.js',
  'dist/proto/liveswap.binpb',
  'proto/liveswap/v1/liveswap.proto',
  'README.md',
];

const APP = (version: string) => `require('node:http')
  .createServer((req, res) => res.end('${version}'))
  .listen(Number(process.env.APP_PORT), '127.0.0.1');
`;

/** A master through the API, a status through connect(); it stops when its stdin closes. */
const API = `import liveswap, { connect } from 'liveswap';
const ls = await liveswap({ target: './app2.js', socket: process.env.SOCKET, forks: 1, logLevel: 'silent', workerOutput: 'ignore' });
const client = connect({ socket: process.env.SOCKET });
const status = await client.status();
client.close();
console.log(JSON.stringify({ ready: status.counts.ready, pids: status.workers.map((w) => w.pid), endpoint: ls.endpoint }));
process.stdin.resume();
process.stdin.on('end', () => ls.close());
`;

/** npm's variables of the npm that runs this suite (`npm test`): the npm started here is a user's, in another project. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const outer = /^(npm_(lifecycle|package)_|npm_command$|npm_config_(local_prefix|ignore_scripts)$|INIT_CWD$)/;
  return { ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !outer.test(key))), ...extra };
}

interface Started {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

function start(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Started {
  const child = spawn(command, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  child.once('error', () => {});
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Waits (20 s) until `read()` matches `pattern`; gives up at once, with its stderr, if the process exits first. */
async function whenPrinted(what: string, started: Started, name: string, read: () => string, pattern: RegExp): Promise<RegExpExecArray> {
  let exited = false;
  void started.exited.then(() => (exited = true));
  return waitFor(
    what,
    () => {
      if (exited) throw new GiveUp(`${name} exited: ${started.stderr()}`);
      return pattern.exec(read()) ?? undefined;
    },
    { timeoutMs: 20_000 },
  );
}

/** Runs a command to its end (stdin closed at once); rejects past the deadline. */
async function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs = 30_000) {
  const started = start(command, args, cwd, env);
  started.child.stdin!.end();
  const code = await withDeadline(`${command} ${args.join(' ')}`, started.exited, timeoutMs).catch((error: Error) => {
    started.child.kill('SIGKILL');
    throw error;
  });
  return { code, stdout: started.stdout(), stderr: started.stderr() };
}

/** `pid` and every process below it, right now. */
function tree(pid: number): number[] {
  return [pid, ...childPids(pid).flatMap(tree)];
}

/** Bytes of the files under `dir`. */
function sizeOf(dir: string): number {
  let bytes = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) bytes += sizeOf(file);
    else if (entry.isFile()) bytes += fs.statSync(file).size;
  }
  return bytes;
}

test('packed and installed from the tarball: npx liveswap -s, -u, -d and the API run from another project', async (t) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts.prepack, 'npm run build', 'npm pack and npm publish build first');
  assert.equal(pkg.scripts.prepare, 'node scripts/prepare.mjs', 'an install from git builds');
  const prepare = await run(process.execPath, [path.join(ROOT, 'scripts', 'prepare.mjs')], ROOT, { ...userEnv(), npm_command: 'pack' });
  assert.deepEqual(prepare, { code: 0, stdout: '', stderr: '' }, 'prepare leaves npm pack to prepack (no second build)');

  // Pack.
  const work = tempDir();
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT, userEnv());
  assert.equal(packed.code, 0, packed.stderr);
  const [tarball] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  const files = tarball!.files.map((file) => file.path);
  assert.deepEqual(files.filter((file) => !SHIPPED.test(file)), [], 'nothing of tests, benchmarks, sources or scripts');
  assert.deepEqual(NEEDED.filter((file) => !files.includes(file)), [], 'what the runtime needs');

  // Install into an empty project.
  const project = path.join(work, 'project');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'pack-install-app', private: true }));
  fs.writeFileSync(path.join(project, 'app.js'), APP('v1'));
  fs.writeFileSync(path.join(project, 'app2.js'), APP('v2'));
  fs.writeFileSync(path.join(project, 'api.mjs'), API);
  const installStarted = Date.now();
  const install = await run(
    'npm',
    ['install', path.join(work, tarball!.filename), '--no-audit', '--no-fund', '--prefer-offline', '--loglevel', 'error'],
    project,
    userEnv(),
    120_000,
  );
  assert.equal(install.code, 0, install.stderr);
  const modules = path.join(project, 'node_modules');
  const installed = Object.keys((JSON.parse(fs.readFileSync(path.join(modules, '.package-lock.json'), 'utf8')) as { packages: object }).packages);
  assert.ok(installed.includes('node_modules/liveswap'));
  t.diagnostic(
    `installed from the tarball: liveswap and ${installed.length - 1} packages, ${(sizeOf(modules) / 1e6).toFixed(1)} MB in node_modules (${Date.now() - installStarted} ms)`,
  );

  const pids = new Set<number>();
  t.after(() => {
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  });
  const env = userEnv();
  const socket = path.join(work, 'control.sock');

  // The master, as a user starts it.
  const appPort = await freePort();
  const master = start('npx', ['liveswap', '-s', 'app.js', '--socket', socket], project, userEnv({ APP_PORT: String(appPort) }));
  master.child.stdin!.end();
  pids.add(master.child.pid!);
  const masterPid = Number((await whenPrinted('the master to come up', master, 'npx liveswap -s', master.stderr, /master pid (\d+) up/))[1]);
  const seen = () => {
    for (const pid of tree(master.child.pid!)) pids.add(pid);
    for (const m of master.stderr().matchAll(/worker \d+ \(pid (\d+),/g)) pids.add(Number(m[1]));
  };
  seen();
  assert.ok(pids.has(masterPid), 'the master runs under npx');
  assert.equal(executable(masterPid), fs.realpathSync(process.execPath), 'the installed liveswap runs on the first node on PATH: this one');
  assert.equal((await get(appPort)).body, 'v1');

  // The client commands run the CLI's bundle, as installed (its files' times are the unpacking's).
  const probe = ['--import', pathToFileURL(fixture('module-probe.mjs')).href];
  const bin = path.join(modules, 'liveswap', 'bin', 'liveswap.cjs');
  const status = await run(process.execPath, [...probe, bin, '--status', '--socket', socket], project, env);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /ready/);
  assert.deepEqual(status.stderr.split('\n').filter((line) => line.includes('/liveswap/dist/')), [], 'the CLI ran its bundle, not the compiled files');
  const help = await run(process.execPath, [bin, '--help'], project, env);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: liveswap/m, 'yargs and its text width are in the bundle');

  const upgrade = await run('npx', ['liveswap', '-u', 'app2.js', '--socket', socket], project, env);
  assert.equal(upgrade.code, 0, upgrade.stderr);
  assert.match(upgrade.stdout, /upgraded to generation 2 /);
  seen();
  assert.equal((await get(appPort)).body, 'v2');

  const die = await run('npx', ['liveswap', '-d', '--socket', socket], project, env);
  assert.equal(die.code, 0, die.stderr);
  assert.equal(await withDeadline('npx liveswap -s to exit after -d', master.exited, 15_000), 0);
  seen();
  await expectGone([...pids]);
  assert.equal(await accepts(appPort), false, 'nothing answers on the app port after -d');

  // The API from an ES module of the project.
  const apiPort = await freePort();
  const apiSocket = path.join(work, 'api.sock');
  const api = start(process.execPath, ['api.mjs'], project, userEnv({ APP_PORT: String(apiPort), SOCKET: apiSocket }));
  pids.add(api.child.pid!);
  const [line] = await whenPrinted('the API master to report', api, 'api.mjs', api.stdout, /^\{.*\}$/m);
  for (const pid of tree(api.child.pid!)) pids.add(pid);
  const report = JSON.parse(line) as { ready: number; pids: number[]; endpoint: string };
  assert.equal(report.ready, 1);
  assert.equal(report.endpoint, `unix:${apiSocket}`);
  for (const pid of report.pids) assert.ok(pids.has(pid), `worker ${pid} is a child of the API's process`);
  assert.equal((await get(apiPort)).body, 'v2');
  api.child.stdin!.end();
  assert.equal(await withDeadline('api.mjs to exit after close()', api.exited, 15_000), 0, api.stderr());
  await expectGone([...pids]);
});
