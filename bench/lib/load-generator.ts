/**
 * A bounded HTTP load generator, run as a child process of the benchmark so
 * that it does not share an event loop with the process that drives
 * upgrades and reads the clock. Loopback only.
 *
 * Protocol (IPC, see load.ts for the parent side):
 *   → { type: 'start', ...LoadConfig }     start `clients` loops
 *   → { type: 'slow', port, count, ms, tag } fire `count` slow requests at once
 *   → { type: 'stop' }                      stop the loops, reply with every sample
 *   ← { type: 'slow-done', tag, results }   when every slow request has settled
 *   ← { type: 'samples', samples }          after stop
 *
 * Every loop ends at stop, after `maxPerClient` requests or at `hardStopMs`,
 * whichever comes first.
 */
import http from 'node:http';
import { RawHttpClient } from './raw-http.js';
import { now, type LoadConfig, type Outcome, type Samples, type SlowCommand } from './load-protocol.js';

interface Recorder {
  sentAt: number[];
  latencyMs: number[];
  outcome: number[];
  labels: string[];
  index: Map<string, number>;
}

const recorder: Recorder = { sentAt: [], latencyMs: [], outcome: [], labels: [], index: new Map() };

function label(text: string): number {
  let id = recorder.index.get(text);
  if (id === undefined) {
    id = recorder.labels.push(text) - 1;
    recorder.index.set(text, id);
  }
  return id;
}

/** One request; resolves with its outcome: `body:<text>`, `http:<status>` or `error:<kind>`. */
function request(port: number, path: string, agent: http.Agent | false, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve(res.statusCode === 200 ? `body:${body}` : `http:${res.statusCode}`));
      res.on('error', (error: NodeJS.ErrnoException) => resolve(`error:${error.code ?? error.message}`));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (error: NodeJS.ErrnoException) => resolve(`error:${error.code ?? error.message}`));
  });
}

let running = false;
let loops: Promise<void>[] = [];
let closeClients: () => void = () => {};

/** One client's way of sending a request, by engine. */
function clients(config: LoadConfig): { send: Array<() => Promise<Outcome>>; close(): void } {
  const { port, path, keepAlive, timeoutMs } = config;
  if (config.engine === 'raw') {
    const raw = Array.from({ length: config.clients }, () => new RawHttpClient(port, path, keepAlive, timeoutMs));
    return { send: raw.map((client) => () => client.get()), close: () => raw.forEach((client) => client.close()) };
  }
  const agents = keepAlive ? Array.from({ length: config.clients }, () => new http.Agent({ keepAlive: true, maxSockets: 1 })) : [];
  return {
    send: Array.from({ length: config.clients }, (_, i) => () => request(port, path, agents[i] ?? false, timeoutMs)),
    close: () => agents.forEach((agent) => agent.destroy()),
  };
}

function start(config: LoadConfig): void {
  running = true;
  const stopAt = now() + config.hardStopMs;
  let previousAnswered: Promise<void> = Promise.resolve();
  const loop = async (send: () => Promise<Outcome>) => {
    let answered!: () => void;
    const waitForPrevious = previousAnswered;
    previousAnswered = new Promise((resolve) => (answered = resolve));
    if (config.staggered) await waitForPrevious;
    for (let i = 0; running && i < config.maxPerClient && now() < stopAt; i++) {
      const sentAt = now();
      const outcome = await send();
      recorder.sentAt.push(sentAt);
      recorder.latencyMs.push(now() - sentAt);
      recorder.outcome.push(label(outcome));
      answered();
    }
    answered();
  };
  const made = clients(config);
  closeClients = made.close;
  loops = made.send.map(loop);
}

async function stop(): Promise<Samples> {
  running = false;
  await Promise.all(loops);
  closeClients();
  const samples: Samples = {
    sentAt: recorder.sentAt,
    latencyMs: recorder.latencyMs,
    outcome: recorder.outcome,
    labels: recorder.labels,
  };
  recorder.sentAt = [];
  recorder.latencyMs = [];
  recorder.outcome = [];
  return samples;
}

async function slow(command: SlowCommand): Promise<void> {
  const results = await Promise.all(
    Array.from({ length: command.count }, async (_, i) => {
      const sentAt = now();
      const outcome = await request(command.port, `/slow?ms=${command.ms}&tag=${command.tag}-${i}`, false, command.ms + 30_000);
      return { outcome, latencyMs: now() - sentAt };
    }),
  );
  process.send!({ type: 'slow-done', tag: command.tag, results });
}

process.on('message', (message: { type: string }) => {
  if (message.type === 'start') start(message as unknown as LoadConfig);
  else if (message.type === 'slow') void slow(message as unknown as SlowCommand);
  else if (message.type === 'stop') void stop().then((samples) => process.send!({ type: 'samples', samples }));
});
process.on('disconnect', () => process.exit(0));
