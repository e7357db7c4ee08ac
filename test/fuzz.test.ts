/**
 * Fuzz: thousands of random and malformed requests against one real master —
 * random field values for every RPC (biased to invalid ones: nothing here may
 * legitimately change state, so no valid Upgrade, Kill or Die is ever sent),
 * random protobuf bytes on the RPC paths, and random bytes and garbage HTTP/2
 * frames written straight to the control port. Afterwards the master still
 * serves, the workers are the same processes, and the app still answers.
 *
 * Replayable: the seed is fixed (DEFAULT_SEED) and printed; set
 * LIVESWAP_FUZZ_SEED to another to explore. Request i draws from its own
 * generator seeded by (seed, i), so a run sends the same requests whatever
 * order the concurrent calls happen to complete in.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { LiveswapServiceClient } from './helpers/grpc-js-stub.js';
import { poolState } from './helpers/grpc.js';
import { freePort, get } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { startMaster } from './helpers/processes.js';
import { isAlive, waitFor } from './helpers/wait.js';

const REQUESTS = 5000;
const RAW_CONNECTIONS = 400;
/** A safety bound only: the run is bounded by its counts, and a run cut short fails. */
const TIME_LIMIT_MS = 90_000;
const DEFAULT_SEED = 1337;
const IN_FLIGHT = 24;
const SERVICE = '/liveswap.v1.LiveswapService/';

/** mulberry32: small, fast, seedable. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const string = (): string => {
    switch (int(6)) {
      case 0:
        return '';
      case 1:
        return String.fromCodePoint(...Array.from({ length: 1 + int(40) }, () => int(0x10ffff + 1)).map((c) => (c >= 0xd800 && c <= 0xdfff ? 0x41 : c)));
      case 2:
        return 'x'.repeat(int(20_000));
      case 3:
        return pick(['..', '.', '~', 'v2.js', './v2.js', '../../etc/passwd', 'C:\\app.js', '\0', ' ', '/dev/null', '/proc/self', '/', '/etc']);
      case 4:
        return `/${bytes(1 + int(30)).toString('base64url')}/${pick(['app.js', 'index.mjs', ''])}`;
      default:
        return bytes(int(64)).toString('latin1');
    }
  };
  const number = (): number =>
    pick([0, 1, 2, 255, 256, 257, 65535, 2147483647, 2147483648, 4294967295, int(4294967296), int(1000)]);
  const value = (depth = 0): unknown => {
    switch (int(depth > 3 ? 4 : 6)) {
      case 0:
        return null;
      case 1:
        return next() < 0.5;
      case 2:
        return pick([0, -0, 1e308, -1e-308, Number.MAX_SAFE_INTEGER, next() * 1e6 - 5e5, Infinity, -Infinity, NaN]);
      case 3:
        return string();
      case 4:
        return Array.from({ length: int(5) }, () => value(depth + 1));
      default:
        return Object.fromEntries(Array.from({ length: int(5) }, () => [string().slice(0, 50), value(depth + 1)]));
    }
  };
  return { next, int, pick, bytes, string, number, value };
}
type Random = ReturnType<typeof prng>;

/** The generator of request `index` of the run seeded `seed`. */
function requestRandom(seed: number, index: number): Random {
  return prng((seed + Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

function fuzzSeed(): number {
  const given = process.env.LIVESWAP_FUZZ_SEED;
  if (given === undefined || given === '') return DEFAULT_SEED;
  const seed = Number(given);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new Error(`LIVESWAP_FUZZ_SEED must be a whole number from 0 to 4294967295, got "${given}"`);
  }
  return seed;
}

test('5,000+ random and malformed requests leave the master serving, the workers untouched and the app answering', async (t) => {
  const seed = fuzzSeed();
  t.diagnostic(`fuzz seed ${seed} (LIVESWAP_FUZZ_SEED=${seed} replays this run; the default is ${DEFAULT_SEED})`);

  const appPort = await freePort();
  const master = await startMaster(fixture('v1.js'), { forks: 2, tcp: true, env: { APP_PORT: String(appPort) } });
  t.after(() => master.stop());
  const controlPort = master.port;
  const endpoint = `127.0.0.1:${controlPort}`;
  // Nearly every request carries the master's token, so the fuzz reaches the
  // handlers; a few carry a random or no token, to fuzz the check itself.
  const token = fs.readFileSync(path.join(process.env.LIVESWAP_STATE_DIR!, `127.0.0.1_${controlPort}.token`), 'utf8').trim();
  const authorization = (r: Random): Metadata => {
    const metadata = new Metadata();
    const dice = r.next();
    if (dice < 0.95) metadata.set('authorization', `Bearer ${token}`);
    else if (dice < 0.98) {
      const junk = r.bytes(r.int(64)).toString('base64'); // metadata values are printable ASCII
      metadata.set('authorization', r.pick([`Bearer ${junk}`, junk, 'Bearer ', `Bearer ${token}x`]));
    }
    return metadata;
  };
  const before = await master.client.status();

  const stub = new LiveswapServiceClient(endpoint, credentials.createInsecure());
  const raw = new Client(endpoint, credentials.createInsecure());
  t.after(() => {
    stub.close();
    raw.close();
  });

  const codes: Record<string, number> = {};
  const typedCodes: Record<string, number> = {};
  const count = (table: Record<string, number>, error: ServiceError | null) => {
    const name = error ? status[error.code] : 'OK';
    table[name!] = (table[name!] ?? 0) + 1;
  };
  const unary = <Req>(metadata: Metadata, method: (req: Req, md: Metadata, cb: (e: ServiceError | null) => void) => unknown, request: Req) =>
    new Promise<void>((resolve) => {
      method.call(stub, request, metadata, (error) => {
        count(codes, error);
        count(typedCodes, error);
        resolve();
      });
    });

  const v2 = fixture('v2.js');
  const badTarget = (r: Random) => r.pick([r.string(), `${v2}/${r.string()}`, '/nonexistent/' + r.string()]);
  const readyMode = (r: Random) => r.pick([0, 1, 2, 3, 4, -1, 99, r.int(2 ** 31)]);
  /** One random typed request; none of them is a valid state change. */
  const typed = (r: Random): Promise<void> => {
    const md = authorization(r);
    switch (r.int(10)) {
      case 0: // Start: workers run, so even a valid one is FAILED_PRECONDITION.
        return unary(md, stub.start, { target: r.pick([badTarget(r), v2]), forks: r.number(), readyMode: readyMode(r), readyTimeoutMs: r.number() });
      case 1: // Upgrade with a bad target.
        return unary(md, stub.upgrade, { target: badTarget(r), readyMode: readyMode(r), readyTimeoutMs: r.number(), drainTimeoutMs: r.number(), hookData: r.value(), node: '' });
      case 2: // Upgrade to a good target, with a duration or mode that makes it invalid.
        return r.next() < 0.5
          ? unary(md, stub.upgrade, { target: v2, readyMode: r.pick([4, -1, 99]), readyTimeoutMs: r.number(), drainTimeoutMs: 0, hookData: r.value(), node: '' })
          : unary(md, stub.upgrade, { target: v2, readyMode: 0, readyTimeoutMs: 2147483648 + r.int(2 ** 31), drainTimeoutMs: r.number(), hookData: r.value(), node: '' });
      case 3: // Die with a duration out of range: refused before anything stops.
        return unary(md, stub.die, { force: r.next() < 0.5, drainTimeoutMs: 2147483648 + r.int(2 ** 31) });
      case 4:
      case 5: // Broadcast: any value (delivered or refused); no state change either way.
        return unary(md, stub.broadcast, r.next() < 0.1 ? {} : { message: r.value() });
      case 6:
        return unary(md, stub.getStatus, {});
      case 7: // A watch opened and cancelled at a random moment.
        return new Promise<void>((resolve) => {
          const stream = stub.watchWorkers({}, md);
          stream.on('data', () => {});
          stream.on('error', () => {});
          stream.on('end', () => {});
          setTimeout(() => {
            stream.cancel();
            count(codes, null);
            resolve();
          }, r.int(20));
        });
      case 8: // Random bytes as a WatchWorkers request, cancelled at a random moment.
        return new Promise<void>((resolve) => {
          const stream = raw.makeServerStreamRequest(`${SERVICE}WatchWorkers`, (b: Buffer) => b, (b: Buffer) => b, r.bytes(r.int(100)), md);
          let done = false;
          const finish = (error: ServiceError | null) => {
            if (done) return;
            done = true;
            count(codes, error);
            resolve();
          };
          stream.on('data', () => {});
          stream.on('error', (error: ServiceError) => finish(error.code === status.CANCELLED ? null : error));
          stream.on('end', () => finish(null));
          setTimeout(() => {
            stream.cancel();
            finish(null);
          }, r.int(20));
        });
      default: // Random protobuf bytes on an RPC path that no random bytes can turn into a state change.
        return new Promise<void>((resolve) => {
          const method = r.pick(['Start', 'Upgrade', 'Broadcast', 'GetStatus', 'NoSuchMethod']);
          raw.makeUnaryRequest(`${SERVICE}${method}`, (b: Buffer) => b, (b: Buffer) => b, r.bytes(r.int(200)), md, (error) => {
            count(codes, error);
            resolve();
          });
        });
    }
  };

  /** Random bytes, or an HTTP/2 preface followed by garbage frames, straight to the control port. */
  const garbage = (r: Random): Promise<void> =>
    new Promise((resolve) => {
      const socket = net.connect(controlPort, '127.0.0.1');
      const done = () => {
        socket.destroy();
        resolve();
      };
      socket.on('error', done);
      socket.on('connect', () => {
        const chunks: Buffer[] = [];
        if (r.next() < 0.5) chunks.push(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
        for (let i = r.int(8); i >= 0; i--) {
          const payload = r.bytes(r.int(64));
          const header = Buffer.alloc(9);
          header.writeUIntBE(r.next() < 0.8 ? payload.length : r.int(1 << 24), 0, 3);
          header[3] = r.int(12); // frame type: DATA … CONTINUATION, and beyond
          header[4] = r.int(256);
          header.writeUInt32BE(r.int(2 ** 32), 5);
          chunks.push(r.next() < 0.8 ? Buffer.concat([header, payload]) : r.bytes(r.int(300)));
        }
        socket.write(Buffer.concat(chunks));
        setTimeout(done, r.int(30));
      });
    });

  const began = Date.now();
  let sent = 0;
  let rawSent = 0;
  const worker = async () => {
    while (sent < REQUESTS && Date.now() - began < TIME_LIMIT_MS) {
      await typed(requestRandom(seed, sent++));
    }
  };
  const rawWorker = async () => {
    while (rawSent < RAW_CONNECTIONS && Date.now() - began < TIME_LIMIT_MS) {
      await garbage(requestRandom(seed, REQUESTS + rawSent++));
    }
  };
  await Promise.all([...Array.from({ length: IN_FLIGHT }, worker), ...Array.from({ length: 4 }, rawWorker)]);
  const elapsed = Date.now() - began;
  t.diagnostic(`${sent} requests and ${rawSent} garbage connections in ${elapsed} ms; codes ${JSON.stringify(codes)}`);
  assert.deepEqual({ sent, rawSent }, { sent: REQUESTS, rawSent: RAW_CONNECTIONS }, `the run was cut short by the ${TIME_LIMIT_MS} ms safety limit`);

  // Malformed protobuf is INTERNAL "Error deserializing request" (grpc-js decides that, before our
  // handlers run); an unknown method UNIMPLEMENTED; everything else a precise status.
  // A missing or wrong token is UNAUTHENTICATED, and those are a few percent, not most.
  const expected = ['OK', 'INVALID_ARGUMENT', 'FAILED_PRECONDITION', 'RESOURCE_EXHAUSTED', 'INTERNAL', 'UNIMPLEMENTED', 'UNAUTHENTICATED'];
  for (const code of Object.keys(codes)) assert.ok(expected.includes(code), `unexpected status ${code}`);
  assert.ok((codes.UNAUTHENTICATED ?? 0) < sent * 0.1, `too many UNAUTHENTICATED: ${JSON.stringify(codes)}`);
  assert.ok((typedCodes.INVALID_ARGUMENT ?? 0) > 1000, `the typed requests reached the handlers: ${JSON.stringify(typedCodes)}`);
  // Nothing a client can send is a bug in the master: no typed request got INTERNAL or UNKNOWN.
  assert.equal(typedCodes.INTERNAL ?? 0, 0, `INTERNAL answers: ${JSON.stringify(typedCodes)}`);
  assert.equal(typedCodes.UNKNOWN ?? 0, 0);
  assert.doesNotMatch(master.stderr(), /internal error/);

  // The master serves, the same workers run, the app answers.
  assert.ok(isAlive(master.pid));
  // The last cancels may still be on their way when the loop ends (grpc-js sends RST_STREAM asynchronously).
  const after = await waitFor('every cancelled watch to be gone', async () => {
    const status = await master.client.status();
    return status.watchers === 0 ? status : undefined;
  }, { timeoutMs: 5_000 });
  assert.equal(poolState(after), poolState(before), 'the workers are the same processes, the generation the same');
  assert.equal(after.restarts, 0);
  assert.equal((await get(appPort)).body, 'v1');
  // And it still does real work.
  const upgraded = await master.client.upgrade({ target: fixture('v2.js') });
  assert.equal(upgraded.generation, 2);
  assert.equal((await get(appPort)).body, 'v2');
});
