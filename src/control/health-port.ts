/**
 * The health port (--health-port): probes for Kubernetes and load balancers,
 * apart from the control service. Plaintext, no token, and it says nothing
 * beyond up/down, so it may bind any address (the control service keeps its
 * TLS rule). One port serves two protocols, told apart by the first bytes a
 * client sends:
 *   - the HTTP/2 connection preface: gRPC, grpc.health.v1.Health only
 *     (Kubernetes `grpc:` probes, grpc_health_probe);
 *   - anything else: HTTP/1.1, `GET /livez` (200 while the master runs) and
 *     `GET /readyz` (200 while ready workers ≥ pool size, else 503 and why).
 */
import { Server as GrpcServer, ServerCredentials } from '@grpc/grpc-js';
import http from 'node:http';
import net from 'node:net';
import type { Logger } from '../common/logger.js';
import type { Master } from '../supervisor/master.js';
import { addHealthService, readiness } from './health.js';
import { listenerHandleOf, listenOn } from './listen.js';
import type { ListenHandle } from '../supervisor/listeners.js';
import { CONTROL_LIMITS, serverOptions } from './limits.js';
import { capConnections } from './connection-cap.js';
import { HandedOverHttp } from './handed-over-http.js';
import { RefusalLog } from './refusal-log.js';

export interface HealthEndpoint {
  address: string;
  /** 0 picks a free port. */
  port: number;
}

export interface HealthServer {
  /** "0.0.0.0:8080" */
  readonly endpoint: string;
  readonly port: number;
  /** Its listening socket, for a successor master. */
  listenerHandle(): ListenHandle | undefined;
  /** Stops taking connections (a successor took the port over); probes being answered finish. */
  stopAccepting(): void;
  close(): Promise<void>;
}

/** The HTTP paths the health port answers: what probes (and deploy/kubernetes) may use. */
export const HEALTH_PATHS = ['/livez', '/readyz'] as const;

const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** A client that connects and sends nothing is dropped after this long. */
const FIRST_BYTES_TIMEOUT_MS = 10_000;

/** Once a successor master has taken the port over, this one answers for it until the connection closes. */
function answer(master: Master, connections: HandedOverHttp, req: http.IncomingMessage, res: http.ServerResponse): void {
  const handedOver = connections.handedOver;
  const headers = connections.request(req, res);
  const path = (req.url ?? '/').split('?')[0];
  const text = (status: number, body: string): void => {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...headers });
    res.end(req.method === 'HEAD' ? undefined : `${body}\n`);
  };
  if (path !== '/livez' && path !== '/readyz') return text(404, `not found: ${HEALTH_PATHS.join(' and ')} are served here`);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return text(405, 'use GET');
  }
  if (path === '/livez') return text(200, 'ok: the master is running');
  const { ready, reason } = handedOver ? { ready: true, reason: 'a successor master serves' } : readiness(master);
  return text(ready ? 200 : 503, `${ready ? 'ready' : 'not ready'}: ${reason}`);
}

export async function startHealthServer(master: Master, where: HealthEndpoint, log: Logger, inheritedFd?: number): Promise<HealthServer> {
  // The control port's limits: idle and old connections closed, streams and session memory capped.
  const grpcServer = new GrpcServer(serverOptions(CONTROL_LIMITS));
  // Open to anyone who reaches the port: the same cap on watches as the control port's.
  const health = addHealthService(grpcServer, master, CONTROL_LIMITS.maxHealthWatches);
  const injector = grpcServer.createConnectionInjector(ServerCredentials.createInsecure());
  let accepting = true;
  const connections = new HandedOverHttp();
  const httpServer = http.createServer((req, res) => answer(master, connections, req, res));
  httpServer.keepAliveTimeout = 5000;

  const sockets = new Set<net.Socket>();
  const dispatch = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(FIRST_BYTES_TIMEOUT_MS, () => socket.destroy());
    let seen = Buffer.alloc(0);
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) seen = Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, HTTP2_PREFACE.length);
      const http2 = seen.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
      if (http2 && seen.length < HTTP2_PREFACE.length) return; // Could still be either: wait for more.
      socket.off('readable', onReadable);
      socket.setTimeout(0);
      socket.unshift(seen);
      if (http2) injector.injectConnection(socket);
      else {
        connections.track(socket);
        httpServer.emit('connection', socket);
      }
    };
    socket.on('readable', onReadable);
  };
  const tcp = net.createServer(dispatch);
  const refusals = new RefusalLog(log);
  capConnections(tcp, CONTROL_LIMITS.maxConnections, 'health port', refusals);
  let endpoint: string;
  try {
    endpoint = await listenOn(tcp, where, 'health probes', inheritedFd);
  } catch (error) {
    health.stop();
    refusals.close();
    injector.destroy();
    throw error;
  }
  log.info(`health probes on ${endpoint}: grpc.health.v1.Health, GET /livez and /readyz (no token, no TLS: up/down only)`);

  // 'close': not listening, and no connection left.
  const closed = new Promise<void>((resolve) => tcp.once('close', () => resolve()));
  /**
   * Handed over: a probe on a connection already open here (or accepted just
   * before) is answered as the successor would answer it (ready, SERVING),
   * and sent on its way: HTTP/1.1 as handed-over-http.ts says (Connection:
   * close; an idle connection closed only after the idle grace, and close()
   * waits for that), HTTP/2 with GOAWAY (grpc-js's graceful shutdown; an
   * open Watch goes on until close()).
   */
  const stopAccepting = () => {
    if (!accepting) return;
    accepting = false;
    tcp.close();
    connections.handOver();
    health.handOver();
    grpcServer.tryShutdown(() => {});
  };
  let closing: Promise<void> | undefined;
  return {
    endpoint,
    port: (tcp.address() as net.AddressInfo).port,
    listenerHandle: () => listenerHandleOf(tcp),
    stopAccepting,
    close() {
      closing ??= (async () => {
        await connections.close();
        stopAccepting();
        health.stop();
        refusals.close();
        httpServer.closeAllConnections();
        injector.destroy();
        grpcServer.forceShutdown();
        for (const socket of sockets) socket.destroy();
        return closed;
      })();
      return closing;
    },
  };
}
