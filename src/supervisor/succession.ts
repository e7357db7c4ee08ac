/**
 * Both ends of a master self-upgrade (docs/self-upgrade.md), as run.ts wires
 * them: the old master asking for a successor (through the keeper, in this
 * process or its parent), and the successor taking over.
 */
import { failedPrecondition, LiveswapError, Status } from '../common/errors.js';
import {
  CONTROL_KEY,
  isHandoverMessage,
  SUCCESSOR_ENV,
  type BeginMessage,
  type FailedMessage,
  type ReadyMessage,
  type Succession,
} from '../common/handover.js';
import type { Keeper, SuccessorOutcome } from './keeper.js';
import type { ListenHandle } from './listeners.js';

export type KeeperLink = (succession: Succession, listeners: { key: string; handle: ListenHandle }[], control: ListenHandle) => Promise<SuccessorOutcome>;

/** The first master: the keeper is this process. */
export function localKeeper(keeper: Keeper): KeeperLink {
  return (succession, listeners, control) =>
    keeper.startSuccessor(succession, listeners.map((l) => ({ key: l.key, fd: l.handle.fd })), control.fd);
}

/** A successor master: the keeper is its parent; the sockets go to it as handles on the IPC channel. */
export function parentKeeper(): KeeperLink {
  return (succession, listeners, control) =>
    new Promise<SuccessorOutcome>((resolve) => {
      const onMessage = (message: unknown) => {
        if (!isHandoverMessage(message) || (message.liveswapHandover !== 'ready' && message.liveswapHandover !== 'failed')) return;
        process.off('message', onMessage);
        process.off('disconnect', onGone);
        resolve(message);
      };
      const onGone = () => onMessage({ liveswapHandover: 'failed', reason: 'the keeper went away', stderrTail: [] } satisfies FailedMessage);
      process.on('message', onMessage);
      process.once('disconnect', onGone);
      const send = (message: object, handle?: ListenHandle) =>
        process.send!(message, handle as never, undefined, (error) => {
          if (error) onMessage({ liveswapHandover: 'failed', reason: `cannot reach the keeper: ${error.message}`, stderrTail: [] } satisfies FailedMessage);
        });
      for (const { key, handle } of listeners) send({ liveswapHandover: 'socket', key }, handle);
      send({ liveswapHandover: 'socket', key: CONTROL_KEY }, control);
      send({ liveswapHandover: 'spawn', succession });
    });
}

/** Is this process a successor master? (Asked once: the mark is removed so its workers do not inherit it.) */
export function isSuccessor(): boolean {
  const yes = process.env[SUCCESSOR_ENV] === '1' && typeof process.send === 'function';
  delete process.env[SUCCESSOR_ENV];
  return yes;
}

/** A successor's first message from the keeper: what to take over, and where its sockets are. */
export function receiveHandover(timeoutMs: number): Promise<BeginMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new LiveswapError(Status.UNAVAILABLE, `no handover from the keeper within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (message: unknown) => {
      if (!isHandoverMessage(message) || message.liveswapHandover !== 'begin') return;
      clearTimeout(timer);
      process.off('message', onMessage);
      resolve(message);
    };
    process.on('message', onMessage);
  });
}

export function tellKeeper(message: ReadyMessage | FailedMessage): void {
  if (process.connected) process.send!(message);
}

/** A failed successor start, for the caller of UpgradeMaster. */
export function successorFailed(outcome: FailedMessage): LiveswapError {
  return failedPrecondition(`upgrade-master failed, this master carries on unchanged: ${outcome.reason}`, outcome.stderrTail);
}
