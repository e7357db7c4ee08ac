/**
 * What one peer of the control server may cost the master, token or not:
 * grpc-js's own limits on every connection, and a cap on the one stream an
 * unauthenticated peer may hold open (Health.Watch). Without them, a peer
 * that opens streams and never reads was buffered without bound
 * (docs/security.md has the measurements).
 */
import type { ChannelOptions } from '@grpc/grpc-js';

export interface ControlLimits {
  /** HTTP/2 streams open at once on one connection (grpc.max_concurrent_streams). */
  maxConcurrentStreams: number;
  /** MiB one HTTP/2 session may buffer before new streams are refused (grpc-node.max_session_memory). */
  maxSessionMemoryMiB: number;
  /** A connection with no call for this long is closed (grpc.max_connection_idle_ms). */
  maxConnectionIdleMs: number;
  /**
   * After this long a connection gets a GOAWAY: no new calls on it (clients
   * reconnect), while its open streams, WatchWorkers included, go on: the
   * grace period (grpc.max_connection_age_grace_ms) is left unlimited.
   */
  maxConnectionAgeMs: number;
  /** Health.Watch streams open at once, over all connections; more get RESOURCE_EXHAUSTED. */
  maxHealthWatches: number;
  /** Connections open at once on one of the master's ports (control, health, metrics); more are closed as they come (connection-cap.ts). */
  maxConnections: number;
}

export const CONTROL_LIMITS: ControlLimits = {
  // Not 100 or 200: grpc-js clients in one process share one connection per target (its global
  // subchannel pool), so a tool with a few hundred watches puts them all on it; test/watchers.test.ts
  // holds 300 and stalled at either.
  maxConcurrentStreams: 1000,
  maxSessionMemoryMiB: 4,
  maxConnectionIdleMs: 5 * 60_000,
  maxConnectionAgeMs: 30 * 60_000,
  maxHealthWatches: 64,
  // A CLI command holds one connection while it runs, a grpc-js process one per master, a prober or
  // scraper one: 256 leaves room for a fleet's tooling, and costs at most 256 descriptors and, idle,
  // about 6 MiB (5,000 idle HTTP/2 connections added 112 MiB of RSS).
  maxConnections: 256,
};

/** The grpc-js server options that enforce `limits`. */
export function serverOptions(limits: ControlLimits): ChannelOptions {
  return {
    'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
    'grpc-node.max_session_memory': limits.maxSessionMemoryMiB,
    'grpc.max_connection_idle_ms': limits.maxConnectionIdleMs,
    'grpc.max_connection_age_ms': limits.maxConnectionAgeMs,
  };
}
