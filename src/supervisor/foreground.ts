/**
 * The CLI's master owns its process: SIGINT/SIGTERM stop it gracefully (a
 * second one kills the workers at once), SIGHUP reloads, closing its
 * terminal stops it gracefully, a reader that went away (`| head`) must not
 * take the master down with EPIPE, and grpc-js's own log lines go to our log
 * instead of breaking the one-line error contract. A library embedding the
 * master does none of this.
 */
import * as grpc from '@grpc/grpc-js';
import { format } from 'node:util';
import type { Logger } from '../common/logger.js';
import type { Master } from './master.js';
import { detachStdio, hasControllingTerminal, terminalStdio } from './terminal.js';

export function becomeForegroundMaster(master: Master, log: Logger): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (master.handedOver) return; // The keeper passes it on to the successor.
      if (master.isStopping) {
        log.warn(`${signal} again: killing the workers without waiting for them to drain`);
        void master.die({ force: true });
      } else {
        log.info(`${signal}: stopping gracefully (send it again to kill the workers at once)`);
        void master.die();
      }
    });
  }
  onSighup(master, log);
  // Writes to a closed pipe fail with EPIPE; the output is lost either way, the workers are not.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  grpc.setLogger({ error: (...args: unknown[]) => log.debug(`grpc: ${format(...args)}`) });
}

/**
 * SIGHUP means one of two things, told apart by the terminal:
 *   - The terminal closed. The kernel sends SIGHUP to the session (the shell
 *     passes it on to its jobs), as to every foreground program, and expects
 *     it to end; a master that reloaded instead would serve on with nobody
 *     watching and nowhere to log. So it stops gracefully, like SIGTERM. It
 *     is recognised by the master having had a controlling terminal at start
 *     and having none now: the hangup detached the whole session from it.
 *   - Anything else (`kill -HUP`, systemd's ExecReload, a master in a
 *     terminal that is still open) is a reload: an upgrade to the current
 *     target as it was given, resolved again, so after `current ->
 *     releases/N+1` it moves to the new release. One at a time: a SIGHUP
 *     while an operation runs is logged and dropped, never queued.
 * Asking the terminal rather than "is stdio a terminal" keeps both right for
 * a master in a terminal whose output goes to a file, and for one started
 * with `setsid` or by systemd, which never had a terminal to lose.
 */
function onSighup(master: Master, log: Logger): void {
  const startedInTerminal = hasControllingTerminal();
  const stdioOnTerminal = terminalStdio();
  process.on('SIGHUP', () => {
    if (master.handedOver) return; // The keeper passes it on to the successor.
    if (startedInTerminal && !hasControllingTerminal()) {
      detachStdio(stdioOnTerminal);
      log.info('SIGHUP: the terminal closed; stopping gracefully');
      void master.die();
      return;
    }
    const { requestedTarget, operation } = master.status();
    if (master.isStopping) return log.warn('SIGHUP ignored: the master is stopping');
    if (!requestedTarget) return log.warn('SIGHUP ignored: nothing has been started yet, so there is nothing to reload');
    if (operation) return log.warn(`SIGHUP ignored: ${operation} in progress; send it again once it has finished`);
    log.info(`SIGHUP: reloading ${requestedTarget} (an upgrade to what it names now)`);
    master.upgrade(requestedTarget, { origin: 'sighup' }).then(
      (result) => log.info(`SIGHUP reload done: generation ${result.generation} on ${result.workers.length} worker(s)`),
      (error: Error) => log.warn(`SIGHUP reload failed: ${error.message}`),
    );
  });
}
