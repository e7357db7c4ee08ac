/**
 * The client's own HTTP/2 (src/client/http2/) against the RFC's examples and
 * against Node's node:http2 server (nghttp2, the same HTTP/2 as grpc-js's
 * server): Huffman and the dynamic table as nghttp2's encoder uses them,
 * header blocks split into CONTINUATION frames, flow control both ways on
 * bodies larger than every window, PING, RST_STREAM, GOAWAY with streams it
 * never processed, and a peer that does not speak HTTP/2. The gRPC layer on
 * top is tested by every test that runs a client command.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import { test } from 'node:test';
import { CODES, EOS, huffmanDecode } from '../src/client/http2/huffman.js';
import { HpackDecoder } from '../src/client/http2/hpack.js';
import { Http2Session, type Headers, type StreamEnd } from '../src/client/http2/session.js';

const hex = (text: string) => Buffer.from(text.replace(/\s/g, ''), 'hex');

test('Huffman: the RFC 7541 codes and examples', () => {
  // Appendix B: a few codes as the RFC lists them.
  assert.equal(CODES['0'.charCodeAt(0)], 0x0);
  assert.equal(CODES['a'.charCodeAt(0)], 0x3);
  assert.equal(CODES[' '.charCodeAt(0)], 0x14);
  assert.equal(CODES[0], 0x1ff8);
  assert.equal(CODES[255], 0x3ffffee);
  assert.equal(CODES[EOS], 0x3fffffff);
  // Appendix C.4 and C.6.
  assert.equal(huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff')).toString(), 'www.example.com');
  assert.equal(huffmanDecode(hex('a8eb 1064 9cbf')).toString(), 'no-cache');
  assert.equal(huffmanDecode(hex('6402')).toString(), '302');
  assert.equal(huffmanDecode(hex('aec3 771a 4b')).toString(), 'private');
  // Padding must be a prefix of EOS (all 1 bits) and shorter than a byte.
  assert.equal(huffmanDecode(hex('6400')).toString(), '300'); // 16 bits, no padding
  assert.throws(() => huffmanDecode(hex('18')), /invalid padding/); // 'a' (00011), then 000: padding not all 1s
  assert.throws(() => huffmanDecode(hex('64 02 ff')), /invalid padding/);
  assert.throws(() => huffmanDecode(hex('ffff fffc')), /EOS/);
});

test('HPACK: the RFC 7541 C.3 requests, the dynamic table carried from one block to the next', () => {
  const decoder = new HpackDecoder();
  assert.deepEqual(decoder.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d')), [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
  ]);
  assert.deepEqual(decoder.decode(hex('8286 84be 5808 6e6f 2d63 6163 6865')), [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
    ['cache-control', 'no-cache'],
  ]);
  assert.deepEqual(decoder.decode(hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65')), [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/index.html'],
    [':authority', 'www.example.com'],
    ['custom-key', 'custom-value'],
  ]);
  assert.throws(() => decoder.decode(hex('80')), /index 0/);
  assert.throws(() => decoder.decode(hex('ff00')), /past the end of the table/);
  assert.throws(() => decoder.decode(hex('3fe2 1f')), /table size/);
  // A bad Huffman string and an endless integer are HPACK errors (the session ends the connection), not a crash or a hang.
  assert.throws(() => decoder.decode(hex('00 81 18 00')), (error: Error) => error.constructor.name === 'HpackError' && /invalid padding/.test(error.message));
  assert.throws(() => decoder.decode(Buffer.from([0x00, 0x7f, ...Array(150).fill(0x80), 0x00])), /too long/);
  // Indexed fields expand a small block: the decoded list is bounded.
  // A field "x: yyy…" (3,000 bytes) entered in the table, then 400 references to it (index 62): 1.2 MB from 3 KB.
  const entry = Buffer.concat([hex('40 01 78 7f b9 16'), Buffer.alloc(3000, 'y')]);
  assert.equal(new HpackDecoder().decode(entry)[0]![1], 'y'.repeat(3000));
  assert.throws(() => new HpackDecoder().decode(Buffer.concat([entry, Buffer.alloc(400, 0xbe)])), /header list of more than/);
});

interface Outcome {
  headers: Headers[];
  body: Buffer;
  end: StreamEnd;
}

function call(session: Http2Session, path: string, body: Buffer, extra: [string, string][] = []): Promise<Outcome> {
  return new Promise((resolve) => {
    const headers: Headers[] = [];
    const chunks: Buffer[] = [];
    session.request([[':method', 'POST'], [':scheme', 'http'], [':path', path], [':authority', 'localhost'], ...extra], body, {
      headers: (fields) => headers.push(fields),
      data: (chunk) => chunks.push(chunk),
      close: (end) => resolve({ headers, body: Buffer.concat(chunks), end }),
    });
  });
}

async function h2Server(handler: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void, options: http2.ServerOptions = {}) {
  const server = http2.createServer(options);
  server.on('stream', (stream, headers) => {
    // A stream the test refuses or cuts off errors on the server side: expected here.
    stream.on('error', () => {});
    handler(stream, headers);
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => sessions.add(session));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    sessions,
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      for (const session of sessions) session.destroy();
      server.close(() => resolve());
    }),
  };
}

test('against node:http2: Huffman and the dynamic table over 300 responses, CONTINUATION, flow control both ways, PING, RST_STREAM', async (t) => {
  const { port, sessions, close } = await h2Server((stream, headers) => {
    const path = String(headers[':path']);
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      if (path === '/reset') return stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      const n = Number(headers['x-n'] ?? 0);
      // Values that repeat (indexed) and values that change (literals, Huffman), and enough of them to evict.
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-repeat': 'the same every time', [`x-name-${n % 40}`]: `value ${n} ${'z'.repeat(n % 97)}` }, { waitForTrailers: true });
      stream.on('wantTrailers', () => {
        stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': `done%20${n}`, ...(path === '/big' && { 'x-big': 'b'.repeat(40_000) }) });
      });
      stream.end(path === '/echo' ? body : Buffer.from(`n=${n}`));
    });
  });
  t.after(close);
  const session = new Http2Session({ host: '127.0.0.1', port });
  t.after(() => session.close());

  for (let n = 0; n < 300; n++) {
    const outcome = await call(session, '/small', Buffer.from('x'), [['x-n', String(n)]]);
    assert.deepEqual(outcome.end, { kind: 'ended' });
    assert.equal(outcome.headers.length, 2, 'response headers and trailers');
    assert.equal(outcome.headers[0]![':status'], '200');
    assert.equal(outcome.headers[0]!['x-repeat'], 'the same every time');
    assert.equal(outcome.headers[0]![`x-name-${n % 40}`], `value ${n} ${'z'.repeat(n % 97)}`);
    assert.equal(outcome.headers[1]!['grpc-message'], `done%20${n}`);
    assert.equal(outcome.body.toString(), `n=${n}`);
  }
  assert.ok(session.spokeHttp2);

  // 3 MiB each way: more than the peer's 64 KiB windows and this client's 1 MiB stream window.
  const big = Buffer.alloc(3 * 1024 * 1024, 7);
  big.write('start');
  const echoed = await call(session, '/echo', big);
  assert.deepEqual(echoed.end, { kind: 'ended' });
  assert.ok(echoed.body.equals(big), `echoed ${echoed.body.length} bytes`);

  // Trailers of 40 KB: one HEADERS frame and CONTINUATIONs.
  const continued = await call(session, '/big', Buffer.from('x'));
  assert.equal(continued.headers[1]!['x-big'], 'b'.repeat(40_000));

  const reset = await call(session, '/reset', Buffer.from('x'));
  assert.deepEqual(reset.end, { kind: 'reset', code: http2.constants.NGHTTP2_ENHANCE_YOUR_CALM });

  // The peer's PING is answered.
  const [serverSession] = sessions;
  const acked = await new Promise<boolean>((resolve) => serverSession!.ping((error) => resolve(!error)));
  assert.ok(acked, 'the client acknowledged the PING');
  // And the connection still works.
  assert.deepEqual((await call(session, '/small', Buffer.from('x'))).end, { kind: 'ended' });
});

test('against node:http2: a paused stream stops the server at its window; resume lets the rest through', async (t) => {
  const total = 4 * 1024 * 1024;
  let written = 0;
  const { port, close } = await h2Server((stream) => {
    stream.respond({ ':status': 200 });
    const chunk = Buffer.alloc(64 * 1024);
    const pump = () => {
      while (written < total) {
        written += chunk.length;
        if (!stream.write(chunk)) return void stream.once('drain', pump);
      }
      stream.end();
    };
    pump();
  });
  t.after(close);
  const session = new Http2Session({ host: '127.0.0.1', port });
  t.after(() => session.close());
  let received = 0;
  let paused = false;
  const ended = new Promise<StreamEnd>((resolve) => {
    const stream = session.request([[':method', 'POST'], [':scheme', 'http'], [':path', '/'], [':authority', 'x']], Buffer.from('x'), {
      headers: () => {
        stream.pause();
        paused = true;
      },
      data: (data) => (received += data.length),
      close: resolve,
    });
    // Once the server has stopped at the window, resume.
    const check = setInterval(() => {
      if (paused && received > 0 && received <= 1024 * 1024 && written < total) {
        clearInterval(check);
        setTimeout(() => {
          assert.ok(received <= 1024 * 1024, `a paused stream received ${received} bytes, more than its 1 MiB window`);
          stream.resume();
        }, 200);
      }
    }, 20);
  });
  assert.deepEqual(await ended, { kind: 'ended' });
  assert.equal(received, total);
});

test('against node:http2: GOAWAY ends the streams it did not process as refused, and the session takes no more', async (t) => {
  const held: http2.ServerHttp2Stream[] = [];
  const { port, sessions, close } = await h2Server((stream) => {
    held.push(stream);
    stream.on('data', () => {});
  });
  t.after(close);
  const session = new Http2Session({ host: '127.0.0.1', port });
  t.after(() => session.close());
  let gone = 0;
  session.onGone = () => gone++;
  const first = call(session, '/', Buffer.from('x'));
  // Wait until the server holds it.
  for (let i = 0; i < 200 && held.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(held.length, 1);
  const [serverSession] = sessions;
  const second = call(session, '/', Buffer.from('x'));
  serverSession!.goaway(http2.constants.NGHTTP2_NO_ERROR, 1);
  assert.deepEqual((await second).end, { kind: 'refused' });
  assert.equal(gone, 1);
  assert.equal(session.usable, false);
  // The stream at or below the last id goes on.
  held[0]!.respond({ ':status': 200 });
  held[0]!.end('ok');
  const done = await first;
  assert.deepEqual(done.end, { kind: 'ended' });
  assert.equal(done.body.toString(), 'ok');
});

test('a peer that is not HTTP/2 ends the session with a protocol error; one that is not there, with the socket error', async (t) => {
  const plain = http.createServer((_req, res) => res.end('hi'));
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  t.after(() => plain.close());
  const session = new Http2Session({ host: '127.0.0.1', port: (plain.address() as net.AddressInfo).port });
  const outcome = await call(session, '/', Buffer.from('x'));
  assert.equal(outcome.end.kind, 'lost');
  assert.match(String(outcome.end.kind === 'lost' && outcome.end.error?.message), /^Protocol error: /);

  const closedPort = (plain.address() as net.AddressInfo).port;
  plain.close();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const nobody = new Http2Session({ host: '127.0.0.1', port: closedPort });
  const refused = await call(nobody, '/', Buffer.from('x'));
  assert.equal(refused.end.kind, 'lost');
  assert.match(String(refused.end.kind === 'lost' && refused.end.error?.message), /ECONNREFUSED/);
  assert.equal(refused.end.kind === 'lost' && refused.end.setUp, false);
});

test("against node:http2: calls beyond the peer's MAX_CONCURRENT_STREAMS wait their turn, and close() lets them finish", async (t) => {
  let concurrent = 0;
  let most = 0;
  const { port, close } = await h2Server(
    (stream) => {
      concurrent++;
      most = Math.max(most, concurrent);
      stream.on('data', () => {});
      stream.on('end', () => {
        setTimeout(() => {
          concurrent--;
          stream.respond({ ':status': 200 });
          stream.end('ok');
        }, 20);
      });
    },
    { settings: { maxConcurrentStreams: 1 } },
  );
  t.after(close);
  const session = new Http2Session({ host: '127.0.0.1', port });
  // The peer's SETTINGS first, so that the limit is known when the calls go out.
  assert.deepEqual((await call(session, '/', Buffer.from('x'))).end, { kind: 'ended' });
  const calls = Array.from({ length: 5 }, () => call(session, '/', Buffer.from('x')));
  session.close();
  const outcomes = await Promise.all(calls);
  assert.deepEqual(outcomes.map((o) => o.body.toString()), ['ok', 'ok', 'ok', 'ok', 'ok']);
  assert.equal(most, 1, 'never more streams at once than the peer allows');
  assert.equal(session.usable, false);
});
