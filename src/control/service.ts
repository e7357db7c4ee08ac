/**
 * The gRPC handlers: each maps one RPC onto one master method, and every
 * failure onto a precise status. Expected failures are LiveswapErrors;
 * anything else is a bug, logged with its stack and answered INTERNAL — the
 * master keeps running.
 */
import { Metadata, status, type ServerErrorResponse, type ServerWritableStream, type StatusObject } from '@grpc/grpc-js';
import type { WatchWorkersRequest, WatchWorkersResponse } from '../gen/liveswap/v1/liveswap.js';
import { LiveswapServiceService, type LiveswapServiceServer } from './grpc-service.js';
import http2, { type ServerHttp2Stream } from 'node:http2';
import { invalidArgument, LiveswapError, MASTER_REPLACED_KEY, STDERR_TAIL_KEY } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { Master } from '../supervisor/master.js';
import type { MasterTransition } from '../supervisor/master.js';
import {
  fromProtoReadyMode,
  toProtoCounts,
  toProtoOrigin,
  toProtoReadyMode,
  toProtoTransition,
  toProtoUpgradeRecord,
  toProtoWorker,
} from './proto-mapping.js';

export { LiveswapServiceService };

/** Keep the tail well under grpc's default 8 KiB metadata limit. */
const STDERR_TAIL_MAX_BYTES = 4096;
/**
 * A watcher that falls this many events behind is disconnected rather than
 * buffered without bound (the stream is in object mode: writableLength counts
 * messages, not bytes).
 */
export const WATCH_MAX_BUFFERED_EVENTS = 1024;

export interface ServiceOptions {
  /** Events a watcher may fall behind before it is disconnected (default WATCH_MAX_BUFFERED_EVENTS). */
  watchBufferEvents?: number;
}

function toStatus(error: unknown, log: Logger): Partial<StatusObject> {
  if (error instanceof LiveswapError) {
    const metadata = new Metadata();
    if (error.stderrTail.length > 0) {
      let tail = Buffer.from(error.stderrTail.join('\n'));
      if (tail.length > STDERR_TAIL_MAX_BYTES) tail = tail.subarray(tail.length - STDERR_TAIL_MAX_BYTES);
      metadata.set(STDERR_TAIL_KEY, tail);
    }
    return { code: error.code, details: error.message, metadata };
  }
  log.error(`internal error: ${(error as Error)?.stack ?? String(error)}`);
  return { code: status.INTERNAL, details: `internal error in the liveswap master: ${(error as Error)?.message}` };
}

/**
 * Resets a server stream's HTTP/2 stream with ENHANCE_YOUR_CALM, which every
 * gRPC client maps to RESOURCE_EXHAUSTED. grpc-js has no public API for this,
 * so it reaches for the call's http2 stream and reports false if that is not
 * where it expects (the caller then ends the call the public way).
 */
function resetStream(call: ServerWritableStream<unknown, unknown>): boolean {
  // With server interceptors (the token check), the call is a chain of
  // intercepting calls; the http2 stream is on the innermost one.
  type Layer = { stream?: ServerHttp2Stream; nextCall?: Layer };
  let layer = (call as unknown as { call?: Layer }).call;
  for (let depth = 0; layer && !layer.stream && depth < 16; depth++) layer = layer.nextCall;
  const stream = layer?.stream;
  if (!stream || typeof stream.close !== 'function') return false;
  if (!stream.closed) stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  return true;
}

type UnaryHandler<Req, Res> = (request: Req) => Promise<Res>;

function unary<Req, Res>(log: Logger, handler: UnaryHandler<Req, Res>) {
  return (
    call: { request: Req },
    callback: (error: Partial<StatusObject> | ServerErrorResponse | null, value?: Res) => void,
  ) => {
    Promise.resolve()
      .then(() => handler(call.request))
      .then(
        (response) => callback(null, response),
        (error: unknown) => callback(toStatus(error, log)),
      );
  };
}

export interface ServiceHandle {
  implementation: LiveswapServiceServer;
  /** Ends every open WatchWorkers stream (at shutdown); with a reason, as UNAVAILABLE carrying it. */
  endStreams(reconnect?: string): void;
}

export function createService(master: Master, log: Logger, options: ServiceOptions = {}): ServiceHandle {
  const watchBufferEvents = options.watchBufferEvents ?? WATCH_MAX_BUFFERED_EVENTS;
  const streams = new Set<ServerWritableStream<WatchWorkersRequest, WatchWorkersResponse>>();

  const implementation: LiveswapServiceServer = {
    start: unary(log, async (request) => {
      const result = await master.start(request.target, {
        origin: 'rpc',
        ...(request.forks !== 0 && { forks: request.forks }),
        readyMode: fromProtoReadyMode(request.readyMode),
        readyTimeoutMs: request.readyTimeoutMs,
      });
      return { generation: result.generation, workers: result.workers.map(toProtoWorker) };
    }),

    upgrade: unary(log, async (request) => {
      const result = await master.upgrade(request.target, {
        origin: 'rpc',
        readyMode: fromProtoReadyMode(request.readyMode),
        readyTimeoutMs: request.readyTimeoutMs,
        drainTimeoutMs: request.drainTimeoutMs,
        hookData: request.hookData,
        ...(request.node && { node: request.node }),
      });
      return { ...result, workers: result.workers.map(toProtoWorker) };
    }),

    kill: unary(log, async () => {
      const result = await master.kill('rpc');
      return { killed: result.killed, workers: result.workers.map(toProtoWorker) };
    }),

    upgradeMaster: unary(log, (request) =>
      master.upgradeMaster({
        ...(request.node && { node: request.node }),
        readyTimeoutMs: request.readyTimeoutMs,
        drainTimeoutMs: request.drainTimeoutMs,
      }),
    ),

    die: unary(log, (request) => master.die({ force: request.force, drainTimeoutMs: request.drainTimeoutMs })),

    broadcast: unary(log, async (request) => {
      if (request.message === undefined) {
        throw invalidArgument('message is required: any JSON value (a string, number, bool, null, list or object)');
      }
      return master.broadcast(request.message);
    }),

    getStatus: unary(log, async () => {
      const s = master.status();
      return {
        ...s,
        workers: s.workers.map(toProtoWorker),
        counts: toProtoCounts(s.counts),
        readyMode: toProtoReadyMode(s.readyMode),
        lastCrash: s.lastCrash && toProtoWorker(s.lastCrash),
        lastKilledAtDrainTimeout: s.lastKilledAtDrainTimeout && toProtoWorker(s.lastKilledAtDrainTimeout),
        watchers: streams.size,
        lastUpgrade: s.lastUpgrade && toProtoUpgradeRecord(s.lastUpgrade),
        operationOrigin: toProtoOrigin(s.operationOrigin),
      };
    }),

    watchWorkers(call) {
      if (master.isStopping) {
        call.emit('error', { code: status.UNAVAILABLE, details: 'the master is shutting down' });
        return;
      }
      // Snapshot and subscription in the same tick: no transition can fall between them.
      const s = master.status();
      call.write({
        event: {
          $case: 'snapshot',
          snapshot: {
            workers: s.workers.map(toProtoWorker),
            counts: toProtoCounts(s.counts),
            generation: s.generation,
            target: s.target,
            sequence: s.sequence,
            operationOrigin: toProtoOrigin(s.operationOrigin),
          },
        },
      });
      const onTransition = (event: MasterTransition) => {
        if (call.writableLength >= watchBufferEvents) {
          cleanup();
          log.warn(`a WatchWorkers client fell ${call.writableLength} events behind; disconnecting it`);
          // The status would travel behind the events the client is not reading, so it
          // might never arrive: reset the stream, which gRPC clients report as RESOURCE_EXHAUSTED.
          if (!resetStream(call)) {
            call.emit('error', {
              code: status.RESOURCE_EXHAUSTED,
              details: 'watcher fell too far behind and was disconnected; reconnect to get a fresh snapshot',
            });
          }
          return;
        }
        call.write({ event: { $case: 'transition', transition: toProtoTransition(event) } });
      };
      const cleanup = () => {
        master.off('transition', onTransition);
        streams.delete(call);
      };
      master.on('transition', onTransition);
      streams.add(call);
      call.once('cancelled', cleanup);
      call.once('finish', cleanup);
      call.once('error', cleanup);
    },
  };

  return {
    implementation,
    endStreams(reconnect) {
      for (const call of streams) {
        if (reconnect) {
          const metadata = new Metadata();
          metadata.set(MASTER_REPLACED_KEY, '1');
          call.emit('error', { code: status.UNAVAILABLE, details: reconnect, metadata });
        }
        else call.end();
      }
      streams.clear();
    },
  };
}
