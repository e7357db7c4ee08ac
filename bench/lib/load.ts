/** The benchmark's side of the load generator (a child process; see load-generator.ts). */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { isAnswer, type LoadConfig, type RotateCommand, type RotateResult, type Samples, type SlowResult } from './load-protocol.js';

const GENERATOR = fileURLToPath(new URL('./load-generator.js', import.meta.url));

export interface Request {
  sentAt: number;
  latencyMs: number;
  outcome: string;
}

/** Anything but an HTTP 200 with a body: `http:<status>` or `error:<code>`. */
export const isFailure = (r: Request): boolean => !isAnswer(r.outcome);
export const answeredAt = (r: Request): number => r.sentAt + r.latencyMs;

export class LoadGenerator {
  private readonly child: ChildProcess;
  private readonly slowWaiters = new Map<string, (results: SlowResult[]) => void>();
  private samplesWaiter: ((samples: Samples) => void) | undefined;
  private rotateWaiter: ((result: RotateResult) => void) | undefined;

  constructor() {
    this.child = fork(GENERATOR, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (message: { type: string; tag?: string; results?: SlowResult[]; samples?: Samples; result?: RotateResult }) => {
      if (message.type === 'rotated') this.rotateWaiter?.(message.result!);
      if (message.type === 'slow-done') this.slowWaiters.get(message.tag!)?.(message.results!);
      if (message.type === 'samples') this.samplesWaiter?.(message.samples!);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  start(config: Partial<LoadConfig> & Pick<LoadConfig, 'port' | 'clients' | 'keepAlive'>): void {
    this.child.send({ type: 'start', path: '/', timeoutMs: 10_000, maxPerClient: 200_000, hardStopMs: 120_000, ...config });
  }

  /** Fires `count` slow requests now; resolves once all have settled. */
  slow(port: number, count: number, ms: number, tag: string): Promise<SlowResult[]> {
    const done = new Promise<SlowResult[]>((resolve) => this.slowWaiters.set(tag, resolve));
    this.child.send({ type: 'slow', port, count, ms, tag });
    return done;
  }

  /** Drives the servers in turn (see RotateCommand); resolves after the last slice. */
  rotate(command: RotateCommand): Promise<RotateResult> {
    const done = new Promise<RotateResult>((resolve) => (this.rotateWaiter = resolve));
    this.child.send({ type: 'rotate', ...command });
    return done;
  }

  async stop(): Promise<Request[]> {
    const reply = new Promise<Samples>((resolve) => (this.samplesWaiter = resolve));
    this.child.send({ type: 'stop' });
    const { sentAt, latencyMs, outcome, labels } = await reply;
    return sentAt.map((t, i) => ({ sentAt: t, latencyMs: latencyMs[i]!, outcome: labels[outcome[i]!]! }));
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.disconnect();
    await exited;
  }
}
