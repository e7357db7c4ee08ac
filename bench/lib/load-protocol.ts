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

export interface SlowCommand {
  port: number;
  count: number;
  ms: number;
  tag: string;
}

/** `body:<text>` (HTTP 200), `http:<status>`, or `error:<code>`. */
export type Outcome = string;

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
