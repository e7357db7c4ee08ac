/**
 * --follow: the master watches a path (typically `/srv/app/current/server.js`
 * with `current -> releases/N`, or a git-sync link in a Kubernetes volume)
 * and every symlink on the way to it. When the path resolves to another real
 * file, the master upgrades to it, with origin 'follow'.
 *
 * The rules:
 *   - Bursts of changes (a deploy tool writing several links, git-sync
 *     swapping a worktree) are debounced: one check DEBOUNCE_MS after the last.
 *   - A change seen while an operation runs (an RPC upgrade, SIGHUP, our own
 *     upgrade) is checked again as soon as the master is idle.
 *   - The file last tried is remembered whether it worked or not: a release
 *     that rolled back is not retried until the path resolves to another file
 *     (and back).
 *   - A path that cannot be resolved for a moment (a link mid-swap, a release
 *     still being copied) is logged once and waited out.
 *
 * Directory watches (inotify on Linux) make it prompt; a slow poll catches
 * what a watch misses (a network file system, a directory replaced whole).
 */
import fs from 'node:fs';
import path from 'node:path';
import { LiveswapError, Status } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { resolveTarget } from '../common/target.js';
import type { Master } from './master.js';

/** Quiet time after the last change before the path is resolved again. */
export const FOLLOW_DEBOUNCE_MS = 150;
/** The safety-net poll. */
export const FOLLOW_POLL_MS = 1000;
/** As the kernel's limit on symlinks in one lookup (ELOOP). */
const MAX_LINKS = 40;

export class Follower {
  /** The file the path resolved to when last acted on (upgraded to, tried, or found running). */
  private lastSeen: string;
  /** The last resolution problem logged, so a lasting one is logged once. */
  private lastProblem = '';
  private readonly watchers = new Map<string, fs.FSWatcher>();
  private readonly poll: NodeJS.Timeout;
  private debounce: NodeJS.Timeout | undefined;
  private waitingForIdle = false;
  private stopped = false;

  constructor(
    private readonly master: Master,
    /** Absolute. */
    readonly followed: string,
    private readonly log: Logger,
  ) {
    this.lastSeen = master.status().target;
    this.rewatch();
    this.poll = setInterval(() => this.check(), FOLLOW_POLL_MS).unref();
    log.info(`following ${followed} (now ${this.lastSeen}): when it resolves to another file, the master upgrades to it`);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.poll);
    clearTimeout(this.debounce);
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
    this.master.off('idle', this.onIdle);
  }

  private readonly changed = () => {
    if (this.stopped) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.check(), FOLLOW_DEBOUNCE_MS).unref();
  };

  private readonly onIdle = () => {
    this.waitingForIdle = false;
    this.check();
  };

  /** Watch the directory of every link on the way, and of the path itself; drop the others. */
  private rewatch(): void {
    const wanted = directoriesToWatch(this.followed);
    for (const [dir, watcher] of this.watchers) {
      if (wanted.has(dir)) continue;
      watcher.close();
      this.watchers.delete(dir);
    }
    for (const dir of wanted) {
      if (this.watchers.has(dir)) continue;
      try {
        const watcher = fs.watch(dir, { persistent: false }, this.changed);
        // A watched directory that goes away: the next check watches what is there now.
        watcher.on('error', () => {
          watcher.close();
          this.watchers.delete(dir);
          this.changed();
        });
        this.watchers.set(dir, watcher);
      } catch {
        // Not there (yet): the poll covers it until it is.
      }
    }
  }

  private check(): void {
    if (this.stopped || this.master.isStopping) return;
    this.rewatch();
    let resolved: string;
    try {
      resolved = resolveTarget(this.followed);
    } catch (error) {
      const problem = (error as Error).message;
      if (problem !== this.lastProblem) this.log.warn(`follow: ${problem}; waiting for ${this.followed} to resolve`);
      this.lastProblem = problem;
      return;
    }
    this.lastProblem = '';
    if (resolved === this.lastSeen) return;
    const { operation, target } = this.master.status();
    if (operation) return this.checkWhenIdle();
    if (resolved === target) {
      // Someone else (SIGHUP, an RPC) got there first.
      this.lastSeen = resolved;
      return;
    }
    const before = this.lastSeen;
    this.lastSeen = resolved;
    this.log.info(`follow: ${this.followed} now resolves to ${resolved} (was ${before}); upgrading`);
    this.master.upgrade(this.followed, { origin: 'follow' }).then(
      (result) => this.log.info(`follow: generation ${result.generation} serves ${result.target}`),
      (error: unknown) => {
        if (error instanceof LiveswapError && error.code === Status.ABORTED) {
          // Another operation began between our look and our call: try again after it.
          this.lastSeen = before;
          return this.checkWhenIdle();
        }
        const message = (error as Error)?.message ?? String(error);
        this.log.warn(`follow: the upgrade to ${resolved} failed; ${target} still serves; not retried until ${this.followed} changes: ${message}`);
      },
    );
  }

  private checkWhenIdle(): void {
    if (this.waitingForIdle) return;
    this.waitingForIdle = true;
    this.master.once('idle', this.onIdle);
  }
}

/**
 * The directories whose entries decide what `file` resolves to: the one
 * holding each symlink met on the way (a link is replaced by renaming a new
 * one over it, an event of its directory), and the one holding the last
 * component. A missing component ends the walk at its directory.
 */
export function directoriesToWatch(file: string): Set<string> {
  const dirs = new Set<string>();
  let pending = path.resolve(file);
  for (let links = 0; links <= MAX_LINKS; links++) {
    const parts = pending.split(path.sep).filter(Boolean);
    let at = path.parse(pending).root;
    let followedLink = false;
    for (let i = 0; i < parts.length; i++) {
      const next = path.join(at, parts[i]!);
      let stat: fs.Stats;
      try {
        stat = fs.lstatSync(next);
      } catch {
        dirs.add(at);
        return dirs;
      }
      if (stat.isSymbolicLink()) {
        dirs.add(at);
        let target: string;
        try {
          target = fs.readlinkSync(next);
        } catch {
          return dirs;
        }
        pending = path.join(path.resolve(at, target), ...parts.slice(i + 1));
        followedLink = true;
        break;
      }
      at = next;
    }
    if (!followedLink) {
      dirs.add(path.dirname(at));
      return dirs;
    }
  }
  return dirs;
}
