/**
 * Every default in one place, with where it comes from (see README "Defaults").
 */
export const DEFAULTS = {
  /** The seed's default pool size. */
  forks: 2,
  /** The seed's control address. */
  address: '127.0.0.1',
  port: 3000,
  /** PM2's 3 s listen_timeout is a known cause of killed services on slow boots. */
  readyTimeoutMs: 10_000,
  /** Gunicorn's and Puma's graceful timeouts; Kubernetes' grace period. */
  drainTimeoutMs: 30_000,
  /**
   * A new worker must stay up this long after becoming ready before an
   * upgrade counts it as good (PM2's min_uptime is 1 s); a crash inside it
   * rolls back. Runs while the old workers drain, so it adds little time.
   */
  stableMs: 500,
  /**
   * Drain each old worker as soon as a replacement is ready, so an upgrade of
   * a small app moves all traffic in about one worker boot time. 'stable'
   * keeps the last old worker serving through the stability window instead.
   */
  cutover: 'ready',
  /** The pre-upgrade hook's time to decide. */
  hookTimeoutMs: 30_000,
  /** Crash respawn: 100 ms doubling to 15 s, reset once a worker has stayed ready 30 s. */
  backoffInitialMs: 100,
  backoffMaxMs: 15_000,
  backoffResetMs: 30_000,
} as const;

/** A clear cap: more workers than this is a typo, not a deployment. */
export const MAX_FORKS = 256;
