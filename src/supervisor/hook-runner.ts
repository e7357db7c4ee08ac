/**
 * Runs the pre-upgrade hook in a child process of its own, so a hook that
 * hangs, leaks or crashes cannot hurt the master. Protocol: the master sends
 * `{ hook, data }`; the runner answers `{ ok: true }`, `{ ok: false, error }`
 * (a veto) or `{ ok: false, loadFailed: true, error }` (the hook module could
 * not be loaded), and exits.
 *
 * Both of the seed's shapes work:
 *   module.exports = function (data, cb) { cb(err) }   // callback: an error vetoes
 *   export default async function (data) { throw … }    // promise: a rejection vetoes
 */
import { pathToFileURL } from 'node:url';

interface HookRequest {
  hook: string;
  data: unknown;
  /** Only load the hook and check it exports a function (at master start). */
  checkOnly?: boolean;
}

type HookFunction = (data: unknown, callback?: (error?: unknown) => void) => unknown;

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}

async function pickFunction(hookPath: string): Promise<HookFunction> {
  const module = (await import(pathToFileURL(hookPath).href)) as Record<string, unknown>;
  const candidate = [module.default, module.preUpgrade].find((f) => typeof f === 'function');
  if (!candidate) {
    throw new Error('it exports no function (expected module.exports = function (data, cb) or export default)');
  }
  return candidate as HookFunction;
}

function invoke(hook: HookFunction, data: unknown): Promise<void> {
  if (hook.length >= 2) {
    return new Promise<void>((resolve, reject) => {
      const result = hook(data, (error?: unknown) => (error ? reject(error) : resolve()));
      // A callback-style hook that is also async may reject instead of calling back.
      if (result && typeof (result as Promise<unknown>).then === 'function') {
        (result as Promise<unknown>).then(undefined, reject);
      }
    });
  }
  return Promise.resolve(hook(data)).then(() => undefined);
}

// The master is gone (or gave up on us): nobody is waiting for the answer.
process.once('disconnect', () => process.exit(0));

process.once('message', (request: HookRequest) => {
  pickFunction(request.hook)
    .then(
      (hook) =>
        (request.checkOnly ? Promise.resolve() : invoke(hook, request.data)).then(
          () => ({ ok: true }),
          (error: unknown) => ({ ok: false, error: messageOf(error) }),
        ),
      (error: unknown) => ({ ok: false, loadFailed: true, error: messageOf(error) }),
    )
    .then((reply) => process.send!(reply, () => process.exit(0)));
});
