/**
 * The pre-upgrade hook: a user module that may veto an upgrade. It runs in
 * its own process (hook-runner) with a timeout; every way it can fail — an
 * error, a rejection, a throw, a hang, a crash — is a veto with a reason.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TailBuffer, forEachLine, summarizeStderr } from './output.js';

const RUNNER = fileURLToPath(new URL('./hook-runner.js', import.meta.url));

export type HookVerdict =
  | { allowed: true }
  | {
      allowed: false;
      reason: string;
      stderrTail: string[];
      /** Set when the hook module itself could not be loaded: why. */
      loadError?: string;
    };

export interface HookRun {
  timeoutMs: number;
  /** Every line the hook writes, stdout and stderr. */
  onOutput?: (line: string) => void;
  /** Aborting kills the hook (Die during an upgrade). */
  signal?: AbortSignal;
  /** Only load the module and check it exports a function. */
  checkOnly?: boolean;
}

export function runPreUpgradeHook(
  hook: string,
  data: unknown,
  { timeoutMs, onOutput = () => {}, signal, checkOnly = false }: HookRun,
): Promise<HookVerdict> {
  return new Promise((resolve) => {
    const child = fork(RUNNER, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv: [] });
    const stderr = new TailBuffer(20);
    forEachLine(child.stderr!, (line) => {
      stderr.push(line);
      onOutput(line);
    });
    forEachLine(child.stdout!, onOutput);
    let settled = false;
    const settle = (verdict: HookVerdict) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      resolve(verdict);
    };
    const veto = (reason: string, loadError?: string) =>
      settle({ allowed: false, reason, stderrTail: stderr.get(), ...(loadError !== undefined && { loadError }) });
    const timer = setTimeout(() => veto(`pre-upgrade hook did not answer within ${timeoutMs} ms`), timeoutMs);
    // Cancelled (Die): the hook must not outlive the operation that asked it.
    signal?.addEventListener('abort', () => veto('pre-upgrade hook cancelled: the master is shutting down'), {
      once: true,
    });
    child.on('message', (reply: { ok: boolean; loadFailed?: boolean; error?: string }) => {
      if (reply.ok) settle({ allowed: true });
      else if (reply.loadFailed) veto(`pre-upgrade hook ${hook} could not be loaded: ${reply.error}`, reply.error ?? '');
      else veto(`pre-upgrade hook vetoed the upgrade: ${reply.error}`);
    });
    child.on('error', (error) => veto(`pre-upgrade hook could not run: ${error.message}`));
    child.on('close', (code, signal) => {
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const summary = summarizeStderr(stderr.get());
      veto(`pre-upgrade hook ${how} without answering${summary ? `: ${summary}` : ''}`);
    });
    child.send({ hook, data, checkOnly });
  });
}

/**
 * Loads the hook once when the master starts, in the same isolated runner,
 * so a hook that cannot work (a syntax error, no exported function) is
 * refused up front rather than vetoing every upgrade later.
 */
export async function checkPreUpgradeHook(hook: string, timeoutMs: number): Promise<string | undefined> {
  const verdict = await runPreUpgradeHook(hook, null, { timeoutMs, checkOnly: true });
  if (verdict.allowed) return undefined;
  return verdict.loadError !== undefined ? `pre-upgrade hook ${hook} cannot be used: ${verdict.loadError}` : verdict.reason;
}
