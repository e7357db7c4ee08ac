/**
 * Keeps liveswap's own IPC messages away from user code.
 *
 * Node delivers every IPC message as a `message` event on `process`. We wrap
 * `process.emit` (the one place every delivery goes through) so that master
 * envelopes are handled here and never reach the app's listeners, and a
 * broadcast reaches them as the plain value it carries. Messages the app
 * sends (`process.send`) are not touched.
 */
import { isMasterEnvelope, type DrainEnvelope, type RunEnvelope } from '../common/ipc.js';

export interface BridgeHandlers {
  drain(envelope: DrainEnvelope): void;
  run(envelope: RunEnvelope): void;
}

export function installIpcBridge(handlers: BridgeHandlers): void {
  const originalEmit = process.emit;
  // Every IPC delivery passes through here, the internal ones too: one
  // `internalMessage` per connection node:cluster's round-robin hands this
  // worker. So no rest parameter and no spread, which would build an array
  // per event; `arguments` passes everything on untouched.
  const patchedEmit = function (this: NodeJS.Process, event: string | symbol, message?: unknown, handle?: unknown): boolean {
    if (event === 'message' && isMasterEnvelope(message)) {
      if (message.liveswap === 'broadcast') {
        return (originalEmit as (...a: unknown[]) => boolean).call(this, 'message', message.value, handle);
      }
      if (message.liveswap === 'run') handlers.run(message);
      else handlers.drain(message);
      return true;
    }
    return (originalEmit as (...a: unknown[]) => boolean).apply(this, arguments as unknown as unknown[]);
  };
  process.emit = patchedEmit as typeof process.emit;
}
