/**
 * A bounded HTTP load generator, run as a child process of the benchmark so
 * that it does not share an event loop with the process that drives
 * upgrades and reads the clock. Loopback only.
 *
 * Protocol (IPC, see load.ts for the parent side):
 *   → { type: 'start', ...LoadConfig }     start `clients` loops
 *   → { type: 'slow', port, count, ms, tag } fire `count` slow requests at once
 *   → { type: 'stop' }                      stop the loops, reply with every sample
 *   → { type: 'rotate', ...RotateCommand }  drive several servers in turn (steady rounds)
 *   ← { type: 'rotated', result }           when the rotation's last slice has ended
 *   ← { type: 'slow-done', tag, results }   when every slow request has settled
 *   ← { type: 'samples', samples }          after stop
 *
 * Every loop ends at stop, after `maxPerClient` requests or at `hardStopMs`,
 * whichever comes first.
 */
import http from 'node:http';
import { RawHttpClient } from './raw-http.js';
import { isAnswer, now, type LoadConfig, type Outcome, type RotateCommand, type RotateResult, type Samples, type SlowCommand } from './load-protocol.js';

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

/** The clients of a `start`: Node's http client, as a Node service calling another would (the upgrade runs). */
function clients(config: LoadConfig): { send: Array<() => Promise<Outcome>>; close(): void } {
  const { port, path, keepAlive, timeoutMs } = config;
  const agents = keepAlive ? Array.from({ length: config.clients }, () => new http.Agent({ keepAlive: true, maxSockets: 1 })) : [];
  return {
    send: Array.from({ length: config.clients }, (_, i) => () => request(port, path, agents[i] ?? false, timeoutMs)),
    close: () => agents.forEach((agent) => agent.destroy()),
  };
}

function start(config: LoadConfig): void {
  running = true;
  const stopAt = now() + config.hardStopMs;
  const loop = async (send: () => Promise<Outcome>) => {
    for (let i = 0; running && i < config.maxPerClient && now() < stopAt; i++) {
      const sentAt = now();
      const outcome = await send();
      recorder.sentAt.push(sentAt);
      recorder.latencyMs.push(now() - sentAt);
      recorder.outcome.push(label(outcome));
    }
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

/**
 * Why rotate rather than load one server, stop, load the next: this VM's
 * throughput wanders by 15% from one half second to the next (steal time
 * from the host comes and goes in episodes of seconds), so the further apart
 * two servers are measured, the more of that wandering their ratio carries.
 * Slices of a few hundred ms with no gap (no connect, no settle: every
 * keep-alive socket stays open) put the servers of a round within about a
 * second of each other.
 */
async function rotate(command: RotateCommand): Promise<RotateResult> {
  const { ports, schedule, sliceMs, guardMs, keepAlive, path, timeoutMs } = command;
  const perServer = ports.map((port) => Array.from({ length: command.clients }, () => new RawHttpClient(port, path, keepAlive, timeoutMs)));
  // Open each server's sockets one after another. node:cluster's round-robin hands a burst of new
  // connections to whichever worker acknowledges its last one first, so 32 keep-alive sockets opened
  // at once can split 20/12 between two workers, and a slice would measure the split; opened one
  // after another they alternate, 16/16 every time.
  let openingFailures = 0;
  for (const serverClients of perServer) for (const client of serverClients) if (!isAnswer(await client.get())) openingFailures++;
  const answeredByServer = ports.map(() => 0);
  const slices = schedule.map((server) => ({ server, answered: 0, failed: 0 }));
  const startAt = now();
  const endAt = startAt + schedule.length * sliceMs;
  const loop = async (i: number) => {
    for (let sentAt = now(); sentAt < endAt; sentAt = now()) {
      const index = Math.floor((sentAt - startAt) / sliceMs);
      const slice = slices[index]!;
      const outcome = await perServer[slice.server]![i]!.get();
      const at = now();
      if (!isAnswer(outcome)) {
        slice.failed++;
        continue;
      }
      answeredByServer[slice.server]!++;
      // Counted only inside its own slice's window, so a slow answer never inflates the next server's slice.
      if (Math.floor((at - startAt) / sliceMs) === index && at - startAt - index * sliceMs >= guardMs) slice.answered++;
    }
  };
  await Promise.all(perServer[0]!.map((_, i) => loop(i)));
  for (const serverClients of perServer) for (const client of serverClients) client.close();
  const countedSeconds = (sliceMs - guardMs) / 1000;
  return { answeredByServer, openingFailures, slices: slices.map(({ server, answered, failed }) => ({ server, failed, rps: answered / countedSeconds })) };
}

process.on('message', (message: { type: string }) => {
  if (message.type === 'rotate') void rotate(message as unknown as RotateCommand).then((result) => process.send!({ type: 'rotated', result }));
  else if (message.type === 'start') start(message as unknown as LoadConfig);
  else if (message.type === 'slow') void slow(message as unknown as SlowCommand);
  else if (message.type === 'stop') void stop().then((samples) => process.send!({ type: 'samples', samples }));
});
process.on('disconnect', () => process.exit(0));
