/**
 * Keeps liveswap's own IPC messages away from user code.
 *
 * Node delivers every IPC message as a `message` event on `process`. We wrap
 * `process.emit` (the one place every delivery goes through) so that master
 * envelopes are handled here and never reach the app's listeners, and a
 * broadcast reaches them as the plain value it carries. Messages the app
 * sends (`process.send`) are not touched.
 */
import { isMasterEnvelope, type DrainEnvelope, type RunEnvelope } from '../ipc.js';

export interface BridgeHandlers {
  drain(envelope: DrainEnvelope): void;
  run(envelope: RunEnvelope): void;
}

export function installIpcBridge(handlers: BridgeHandlers): void {
  const originalEmit = process.emit;
  const patchedEmit = function (this: NodeJS.Process, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'message' && isMasterEnvelope(args[0])) {
      const envelope = args[0];
      if (envelope.liveswap === 'broadcast') {
        return (originalEmit as (...a: unknown[]) => boolean).call(this, 'message', envelope.value, args[1]);
      }
      if (envelope.liveswap === 'run') handlers.run(envelope);
      else handlers.drain(envelope);
      return true;
    }
    return (originalEmit as (...a: unknown[]) => boolean).call(this, event, ...args);
  };
  process.emit = patchedEmit as typeof process.emit;
}
