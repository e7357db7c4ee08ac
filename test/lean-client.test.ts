/**
 * A client loads what a client needs: `liveswap --status`, `-m` and `-u`, and
 * `import { connect } from 'liveswap'`, load nothing of the master (run.ts,
 * src/supervisor, src/control, winston, prom-client, node:cluster), and
 * neither node:http2 nor, for a master without TLS, node:tls and
 * node:crypto (client/http2/session.ts says why). The probes list what a
 * real process loaded: fixtures/module-probe.mjs the modules it imported,
 * fixtures/builtin-probe.cjs every built-in module, however loaded.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { freePort, get } from './helpers/net.js';
import { CLI, fixture, ROOT } from './helpers/paths.js';
import { runNode, startMaster } from './helpers/processes.js';

const PROBE = ['--import', pathToFileURL(fixture('module-probe.mjs')).href, '--require', fixture('builtin-probe.cjs')];
/** Built-in modules a client without TLS must not load: node:http2 loads the other three. */
const HEAVY_BUILTINS = ['http2', 'tls', 'crypto', 'cluster'];
const MASTER_PARTS = /\/src\/run\.js|\/src\/supervisor\/|\/src\/control\/|\/node_modules\/(winston|prom-client)\/|node:cluster/;
/** grpc-js's whole client and server (its index); the client speaks gRPC itself (client/transport.ts). */
const GRPC_JS = /\/node_modules\/@grpc\/grpc-js\/build\/src\/index\.js/;

function loaded(stderr: string): string[] {
  return [...stderr.matchAll(/^probe: (.*)$/gm)].map((m) => m[1]!);
}

function builtins(stderr: string): string[] {
  const line = /^builtins: (.*)$/m.exec(stderr);
  assert.ok(line, `the built-in probe printed nothing: ${stderr}`);
  return line[1]!.split(',');
}

test('client commands and connect() load nothing of the master', async (t) => {
  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 1, env: { APP_PORT: String(port) } });
  t.after(() => master.stop());

  const commands = [['--status'], ['-m', 'hello'], ['-u', fixture('v2.js')]];
  for (const args of commands) {
    const run = await runNode([...PROBE, CLI, ...args, ...master.via]);
    assert.equal(run.code, 0, `liveswap ${args.join(' ')}: ${run.stderr}`);
    assert.deepEqual(loaded(run.stderr).filter((url) => MASTER_PARTS.test(url)), [], `liveswap ${args.join(' ')}`);
    assert.deepEqual(builtins(run.stderr).filter((name) => HEAVY_BUILTINS.includes(name)), [], `liveswap ${args.join(' ')}`);
    assert.ok(builtins(run.stderr).includes('net'), 'the built-in probe sees node:net');
  }
  assert.equal((await get(port)).body, 'v2', 'the upgrade ran');

  const api = pathToFileURL(path.join(ROOT, 'dist', 'src', 'index.js')).href;
  const script = `const { connect } = await import(${JSON.stringify(api)});
    const client = connect({ socket: ${JSON.stringify(master.socket)} });
    console.log((await client.status()).counts.ready);
    // Calls in flight at once share one connection, and add nothing per call to it (Node warns past ten listeners).
    const many = await Promise.all(Array.from({ length: 50 }, () => client.status()));
    console.log(many.length);
    client.close();`;
  const run = await runNode([...PROBE, '--input-type=module', '-e', script]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout.trim(), '1\n50');
  assert.doesNotMatch(run.stderr, /Warning/, '50 calls in flight on one connection');
  assert.ok(loaded(run.stderr).includes(api), 'the probe saw the API load');
  assert.deepEqual(loaded(run.stderr).filter((url) => MASTER_PARTS.test(url) || GRPC_JS.test(url)), [], 'connect()');
  assert.deepEqual(builtins(run.stderr).filter((name) => HEAVY_BUILTINS.includes(name)), [], 'connect()');

  // The probe does see the master's parts where they are loaded.
  const control = await runNode([...PROBE, '--input-type=module', '-e', `await import(${JSON.stringify(api)}.replace('index.js', 'run.js'))`]);
  assert.equal(control.code, 0, control.stderr);
  for (const part of ['/src/run.js', '/src/supervisor/master.js', '/node_modules/winston/', 'node:cluster', '/node_modules/@grpc/grpc-js/build/src/index.js']) {
    assert.ok(loaded(control.stderr).some((url) => url.includes(part)), `the probe sees ${part} when run.js loads`);
  }
  assert.deepEqual(builtins(control.stderr).filter((name) => HEAVY_BUILTINS.includes(name)).sort(), [...HEAVY_BUILTINS].sort(), 'the built-in probe sees them when run.js loads');
});
