/** What the benchmark and its load generator say to each other (IPC). */

/** Wall-clock time in ms with sub-ms precision, comparable across processes. */
export const now = (): number => performance.timeOrigin + performance.now();

export interface LoadConfig {
  port: number;
  clients: number;
  /** true: each client reuses one socket; false: a new connection per request. */
  keepAlive: boolean;
  path: string;
  timeoutMs: number;
  maxPerClient: number;
  /** The loops stop by themselves this long after the start, whatever happens. */
  hardStopMs: number;
}

/**
 * The steady rounds: the same clients drive several servers in turn, one
 * short slice each, with no pause between slices. Each client keeps a
 * keep-alive socket to every server open for the whole rotation.
 */
export interface RotateCommand {
  ports: number[];
  /** The servers (indices into ports) in the order their slices come. */
  schedule: number[];
  sliceMs: number;
  /**
   * Completions in a slice's first guardMs are not counted: the previous
   * server's last requests are still being answered and the clients are
   * switching over.
   */
  guardMs: number;
  clients: number;
  keepAlive: boolean;
  path: string;
  timeoutMs: number;
}

export interface SliceResult {
  /** Index into the rotation's ports. */
  server: number;
  /** Requests to this slice's server answered (200 with a body) within its counted window, per second. */
  rps: number;
  /** Requests sent in this slice that failed, whenever they failed (every one counts, guard or not). */
  failed: number;
}

export interface RotateResult {
  slices: SliceResult[];
  /** Every request each server answered during the rotation, counted or not (for CPU per request). */
  answeredByServer: number[];
  /** Failures among the first request of every client on every server, which opens its socket before the slices start. */
  openingFailures: number;
}

export interface SlowCommand {
  port: number;
  count: number;
  ms: number;
  tag: string;
}

/** `body:<text>` (HTTP 200), `http:<status>`, or `error:<code>`. */
export type Outcome = string;

/** An HTTP 200 with a body: anything else is a failure. */
export const isAnswer = (outcome: Outcome): boolean => outcome.startsWith('body:');

/** Parallel arrays, one entry per request, in completion order. */
export interface Samples {
  sentAt: number[];
  latencyMs: number[];
  /** Index into labels. */
  outcome: number[];
  labels: Outcome[];
}

export interface SlowResult {
  outcome: Outcome;
  latencyMs: number;
}
