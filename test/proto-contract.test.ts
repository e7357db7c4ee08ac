/**
 * The .proto is the contract for tools in any language. This test drives the
 * master with a client built at run time from proto/ by @grpc/proto-loader —
 * no generated TypeScript involved — the way a Python or Go deploy tool would
 * from its own generated stubs.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { freePort, get } from './helpers/net.js';
import { fixture, ROOT } from './helpers/paths.js';
import { startMaster } from './helpers/processes.js';

type Callback = (error: grpc.ServiceError | null, response: Record<string, unknown>) => void;
type DynamicClient = grpc.Client & Record<string, (request: object, callback: Callback) => void> & {
  watchWorkers(request: object): grpc.ClientReadableStream<Record<string, unknown>>;
};

function call(client: DynamicClient, method: string, request: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) =>
    client[method]!(request, (error, response) => (error ? reject(error) : resolve(response))),
  );
}

test('a client built from the .proto alone drives the master', async (t) => {
  const definition = protoLoader.loadSync('liveswap/v1/liveswap.proto', {
    includeDirs: [path.join(ROOT, 'proto')],
    keepCase: true, // snake_case field names, as in the .proto
    enums: String,
    longs: Number,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    liveswap: { v1: { LiveswapService: new (target: string, creds: grpc.ChannelCredentials) => DynamicClient } };
  };

  const port = await freePort();
  const master = await startMaster(fixture('v1.js'), { env: { APP_PORT: String(port) } });
  t.after(() => master.stop());
  const client = new pkg.liveswap.v1.LiveswapService(`unix:${master.socket}`, grpc.credentials.createInsecure());
  t.after(() => client.close());

  const status = await call(client, 'GetStatus', {});
  assert.equal(status.generation, 1);
  assert.equal(status.target, fixture('v1.js'));
  const workers = status.workers as { state: string; started_at: unknown }[];
  assert.deepEqual(workers.map((w) => w.state), ['WORKER_STATE_READY', 'WORKER_STATE_READY']);

  // google.protobuf.Value in its wire form.
  const broadcast = await call(client, 'Broadcast', {
    // (protobufjs' built-in google types use camelCase field names even with keepCase)
    message: { structValue: { fields: { deploy: { stringValue: 'abc' } } } },
  });
  assert.equal(broadcast.delivered, 2);
  await master.waitForStdout(/received \{"deploy":"abc"\}/);

  // Streams: the first item is a snapshot.
  const stream = client.watchWorkers({});
  const first = await new Promise<Record<string, unknown>>((resolve, reject) => {
    stream.once('data', resolve);
    stream.once('error', reject);
  });
  stream.on('error', () => {});
  stream.cancel();
  assert.equal(first.event, 'snapshot');

  const upgraded = await call(client, 'Upgrade', { target: fixture('v2.js') });
  assert.equal(upgraded.generation, 2);
  assert.equal((await get(port)).body, 'v2');

  // Errors carry precise codes and the stderr tail in trailing metadata.
  const error = await call(client, 'Upgrade', { target: fixture('boot-throws.js') }).then(
    () => assert.fail('expected a rollback'),
    (e: grpc.ServiceError) => e,
  );
  assert.equal(error.code, grpc.status.FAILED_PRECONDITION);
  assert.match(error.details, /^upgrade rolled back: worker \d+ exited with code 1 before listening/);
  const tail = error.metadata.get('liveswap-stderr-tail-bin').map((v) => v.toString()).join('\n');
  assert.match(tail, /Cannot find module 'x-liveswap-missing-module'/);

  const empty = await call(client, 'Broadcast', {}).then(
    () => assert.fail('expected INVALID_ARGUMENT'),
    (e: grpc.ServiceError) => e,
  );
  assert.equal(empty.code, grpc.status.INVALID_ARGUMENT);
  assert.match(empty.details, /^message is required/);

  const relative = await call(client, 'Upgrade', { target: 'v2.js' }).then(
    () => assert.fail('expected INVALID_ARGUMENT'),
    (e: grpc.ServiceError) => e,
  );
  assert.equal(relative.code, grpc.status.INVALID_ARGUMENT);
});
