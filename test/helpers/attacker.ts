/**
 * A hostile peer of the control port, as its own process (the security tests
 * and `npm run bench:security` run it): raw HTTP/2, no gRPC library, so it
 * does what a real client would not: never reads a reply, opens thousands of
 * streams, holds idle connections. It prints one JSON object per line on
 * stdout (what happened) and holds its connections until killed.
 *
 *   node attacker.js reflection-flood PORT MESSAGES [TOKEN]
 *       one connection that reads nothing (flow-control window 0); streams to
 *       ServerReflectionInfo, each sent requests until the master closes it,
 *       then a new one, until MESSAGES requests have been written.
 *   node attacker.js health-watch PORT STREAMS CONNECTIONS
 *       STREAMS Health.Watch calls spread over CONNECTIONS connections.
 *   node attacker.js connections PORT COUNT PROTOCOL
 *       COUNT connections opened and held, each sending the first bytes of
 *       PROTOCOL (h2: the HTTP/2 preface and SETTINGS; http1: half a
 *       request line) and nothing more. Reports how many the master
 *       accepted and how many it closed.
 *   node attacker.js hold PORT [TOKEN]
 *       one connection; with TOKEN a WatchWorkers stream on it. Reports the
 *       GOAWAY, every message of the stream, and the connection's end.
 *
 * `spawnAttacker` runs it from a test and reads its reports.
 */
import { spawn } from 'node:child_process';
import http2 from 'node:http2';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { isAlive, waitFor } from './wait.js';

export type Report = Record<string, unknown> & { event: string };

/** A gRPC message: the 5-byte prefix (not compressed, length) and the protobuf bytes. */
function grpcMessage(payload: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(payload.length, 1);
  return Buffer.concat([prefix, payload]);
}

/** A protobuf string field. */
function stringField(field: number, value: string): Buffer {
  const bytes = Buffer.from(value);
  return Buffer.concat([Buffer.from([(field << 3) | 2, bytes.length]), bytes]);
}

/** ServerReflectionRequest { file_containing_symbol (4): the service }: each answer is the whole descriptor, kilobytes. */
const REFLECTION_REQUEST = grpcMessage(stringField(4, 'liveswap.v1.LiveswapService'));
const EMPTY_MESSAGE = grpcMessage(Buffer.alloc(0));

const report = (event: string, details: Record<string, unknown> = {}) => process.stdout.write(`${JSON.stringify({ event, ...details })}\n`);

function session(port: number, settings: http2.Settings = {}): http2.ClientHttp2Session {
  const s = http2.connect(`http://127.0.0.1:${port}`, { settings });
  s.on('error', () => {});
  s.once('goaway', (code) => report('goaway', { code }));
  s.once('close', () => report('closed'));
  return s;
}

function request(s: http2.ClientHttp2Session, path: string, token?: string): http2.ClientHttp2Stream {
  const stream = s.request({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...(token && { authorization: `Bearer ${token}` }),
  });
  stream.on('error', () => {});
  return stream;
}

async function reflectionFlood(port: number, messages: number, token?: string): Promise<void> {
  const s = session(port, { initialWindowSize: 0 }); // The master can send us nothing: every reply stays with it.
  await new Promise((resolve) => s.once('connect', resolve));
  let sent = 0;
  let streams = 0;
  const refusals = new Map<string, number>();
  while (sent < messages && !s.closed && !s.destroyed) {
    const stream = request(s, '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', token);
    streams++;
    stream.once('trailers', (trailers) => {
      const code = String(trailers['grpc-status'] ?? '?');
      refusals.set(code, (refusals.get(code) ?? 0) + 1);
    });
    stream.once('response', (headers) => {
      // A refusal comes as headers alone (trailers-only response).
      if (headers['grpc-status'] !== undefined) refusals.set(String(headers['grpc-status']), (refusals.get(String(headers['grpc-status'])) ?? 0) + 1);
    });
    while (sent < messages && !stream.closed && !stream.destroyed && !stream.writableEnded) {
      const more = stream.write(REFLECTION_REQUEST);
      sent++;
      if (!more) {
        // Back-pressure from the master (its flow-control window): wait, or give up on this stream and open another.
        let settle = (_drained: boolean) => {};
        const drained = await new Promise<boolean>((resolve) => {
          const onDrain = () => settle(true);
          const onClose = () => settle(false);
          const timer = setTimeout(() => settle(false), 250);
          settle = (value) => {
            clearTimeout(timer);
            stream.off('drain', onDrain);
            stream.off('close', onClose);
            resolve(value);
          };
          stream.once('drain', onDrain);
          stream.once('close', onClose);
        });
        if (!drained) break;
      }
      if (sent % 10_000 === 0) report('progress', { sent, streams });
    }
    if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    if (streams % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  report('flooded', { sent, streams, statuses: Object.fromEntries(refusals) });
}

async function healthWatch(port: number, total: number, connections: number): Promise<void> {
  const sessions = Array.from({ length: connections }, () => session(port));
  // The master's SETTINGS (its stream limit among them) arrive just after the connection.
  const settings = new Promise<http2.Settings>((resolve) => sessions[0]!.once('remoteSettings', resolve));
  await Promise.all(sessions.map((s) => new Promise((resolve) => s.once('connect', resolve))));
  report('settings', { maxConcurrentStreams: (await settings).maxConcurrentStreams });
  let answered = 0;
  let refused = 0;
  let ended = 0;
  const done = () => answered + refused + ended;
  for (let i = 0; i < total; i++) {
    const stream = request(sessions[i % connections]!, '/grpc.health.v1.Health/Watch');
    stream.end(EMPTY_MESSAGE);
    let counted = false;
    const count = (what: 'answered' | 'refused' | 'ended') => {
      if (counted) return;
      counted = true;
      if (what === 'answered') answered++;
      else if (what === 'refused') refused++;
      else ended++;
    };
    stream.once('data', () => count('answered'));
    stream.once('response', (headers) => {
      if (headers['grpc-status'] !== undefined) count('refused');
    });
    stream.once('trailers', (trailers) => count(String(trailers['grpc-status']) === '8' ? 'refused' : 'ended'));
    stream.once('close', () => count('ended'));
    if (i % 500 === 499) await new Promise((resolve) => setImmediate(resolve));
  }
  await waitFor('every health watch to be answered or refused', () => done() >= total, { timeoutMs: 60_000 }).catch(() => {});
  report('watches', { answered, refused, ended, total });
}

const HTTP2_OPENING = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);
const HTTP1_OPENING = Buffer.from('GET /livez HTTP/1.1\r\n');

async function connections(port: number, count: number, protocol: string): Promise<void> {
  const opening = protocol === 'h2' ? HTTP2_OPENING : HTTP1_OPENING;
  let connected = 0;
  let closed = 0;
  for (let i = 0; i < count; i++) {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('connect', () => {
      connected++;
      socket.write(opening);
    });
    socket.on('error', () => {});
    socket.on('data', () => {});
    socket.on('close', () => closed++);
    // A few at a time: the listen backlog is not what is measured.
    if (i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  // What the master kept, as it changes (it closes those past its cap right after accepting them).
  let last = '';
  setInterval(() => {
    const now = JSON.stringify({ connected, closed });
    if (now !== last) report('connections', { connected, closed, open: connected - closed });
    last = now;
  }, 50);
}

async function hold(port: number, token?: string): Promise<void> {
  const s = session(port);
  await new Promise((resolve) => s.once('connect', resolve));
  report('connected');
  if (!token) return;
  const stream = request(s, '/liveswap.v1.LiveswapService/WatchWorkers', token);
  stream.end(EMPTY_MESSAGE);
  let messages = 0;
  stream.on('data', () => report('message', { n: ++messages }));
  stream.once('close', () => report('stream-closed', { messages }));
}

/** Runs the attacker when this file is the process's script. */
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [mode, port, a, b] = process.argv.slice(2);
  const run =
    mode === 'reflection-flood'
      ? reflectionFlood(Number(port), Number(a), b)
      : mode === 'health-watch'
        ? healthWatch(Number(port), Number(a), Number(b))
        : mode === 'connections'
          ? connections(Number(port), Number(a), b ?? 'h2')
          : mode === 'hold'
          ? hold(Number(port), a)
          : Promise.reject(new Error(`unknown mode ${mode}`));
  run.then(
    () => report('holding'),
    (error: Error) => {
      report('failed', { message: error.message });
      process.exit(1);
    },
  );
}

export interface Attacker {
  readonly pid: number;
  reports(): Report[];
  /** Waits for the first report of this event (and that it matches `where`, if given). */
  waitFor(event: string, timeoutMs?: number, where?: (report: Report) => boolean): Promise<Report>;
  stop(): Promise<void>;
}

/** Starts the attacker as its own process; the test's `after` kills it if the test did not. */
export function spawnAttacker(t: { after(fn: () => Promise<void>): void }, args: (string | number)[]): Attacker {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), ...args.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const reports: Report[] = [];
  let buffered = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) !== -1) {
      reports.push(JSON.parse(buffered.slice(0, newline)) as Report);
      buffered = buffered.slice(newline + 1);
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (isAlive(child.pid!)) child.kill('SIGKILL');
    await exited;
  };
  t.after(stop);
  return {
    pid: child.pid!,
    reports: () => [...reports],
    waitFor: (event, timeoutMs = 30_000, where = () => true) =>
      waitFor(`the attacker to report ${event}`, () => {
        const failed = reports.find((r) => r.event === 'failed');
        if (failed) throw new Error(`the attacker failed: ${String(failed.message)}`);
        return reports.find((r) => r.event === event && where(r));
      }, { timeoutMs }),
    stop,
  };
}
