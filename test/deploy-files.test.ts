/**
 * The deploy files users copy (Dockerfile, deploy/kubernetes, deploy/systemd)
 * agree with the code. No cluster or init system runs here, so they are
 * parsed and checked: every liveswap command line passes the CLI's own
 * parser and checks; probes use the health port and only what it serves
 * (HEALTH_PATHS, grpc.health.v1); the grace periods are longer than the
 * drain timeout; ports, volumes, the git-sync link and the Services line up.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { checkArgs, parser, type Args } from '../src/cli/args.js';
import { MASTER_TOKEN_ENV } from '../src/common/token-file.js';
import { DEFAULTS } from '../src/common/defaults.js';
import { HEALTH_PATHS } from '../src/control/health-port.js';
import { ROOT } from './helpers/paths.js';

const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');

/** The arguments through the CLI's parser and checks, as `liveswap ARGS` would run them. */
async function liveswapArgs(argv: string[]): Promise<Args> {
  const args = await parser(argv).parseAsync();
  assert.equal(checkArgs(args), 'start', `${argv.join(' ')} starts a master`);
  return args;
}

/** The drain timeout a master started with these arguments uses, in ms. */
const drainTimeoutMs = (args: Args) => args['drain-timeout'] ?? DEFAULTS.drainTimeoutMs;

/** Node lines the package supports ("^20.19.0 || ^22.12.0 || ^24.0.0" → [20, 22, 24]). */
function supportedNodeLines(): number[] {
  const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
  return [...engines.matchAll(/\^(\d+)\./g)].map((m) => Number(m[1]));
}

test('Dockerfile: a slim Node LTS image, a non-root user, liveswap as the entrypoint, control on a socket or TLS, the health port exposed', async () => {
  const lines = read('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => line.trim() && !line.trim().startsWith('#'));
  const instruction = (name: string) => lines.filter((line) => line.startsWith(`${name} `)).map((line) => line.slice(name.length + 1).trim());

  const from = instruction('FROM');
  const runtime = from.at(-1)!;
  const image = /^node:(\d+)-(?:bookworm-|trixie-)?slim$/.exec(runtime);
  assert.ok(image, `the runtime image ${runtime} is a node slim image`);
  const line = Number(image[1]);
  assert.ok(line % 2 === 0 && supportedNodeLines().includes(line), `node ${line} is an LTS line the package supports`);
  assert.ok(line >= Math.max(...supportedNodeLines()) - 2, `node ${line} is a current LTS`);

  const user = instruction('USER').at(-1);
  assert.ok(user && !['root', '0'].includes(user), `runs as ${user}, not root`);
  assert.deepEqual(JSON.parse(instruction('ENTRYPOINT').at(-1)!), ['liveswap']);

  const args = await liveswapArgs(JSON.parse(instruction('CMD').at(-1)!) as string[]);
  assert.ok(args.socket !== undefined || args['tls-cert'] !== undefined, 'control on a unix socket or on TLS');
  assert.equal(args.follow, true);
  const exposed = instruction('EXPOSE').flatMap((ports) => ports.split(/\s+/)).map(Number);
  assert.ok(args['health-port'] !== undefined && exposed.includes(args['health-port']), `the health port ${args['health-port']} is exposed (${exposed})`);
  assert.ok(!/^(127\.|::1|localhost)/.test(args['health-address'] ?? '127.0.0.1'), 'the health port is reachable from outside the container');
});

interface Probe {
  httpGet?: { path: string; port: string | number };
  grpc?: { port: number; service?: string };
}
interface Container {
  name: string;
  args: string[];
  env?: { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  ports?: { name?: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string }[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
}
interface Manifest {
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
}

function manifests(file: string): Manifest[] {
  return parseAllDocuments(read(file)).map((doc) => {
    assert.deepEqual(doc.errors, [], `${file} is valid YAML`);
    return doc.toJS() as Manifest;
  });
}

test('deploy/kubernetes: git-sync and --follow, probes on the health port, a grace period above the drain timeout, a headless Service, TLS from a Secret', async () => {
  const [deployment] = manifests('deploy/kubernetes/deployment.yaml');
  assert.equal(deployment!.kind, 'Deployment');
  const spec = deployment!.spec as { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: Record<string, unknown> } };
  const pod = spec.template.spec as {
    terminationGracePeriodSeconds: number;
    containers: Container[];
    volumes: { name: string; emptyDir?: object; secret?: { secretName: string } }[];
  };
  const liveswap = pod.containers.find((c) => c.name === 'liveswap')!;
  const gitSync = pod.containers.find((c) => c.name === 'git-sync')!;
  const args = await liveswapArgs(liveswap.args);

  // --follow on a path under git-sync's link, in a volume both containers share.
  assert.equal(args.follow, true);
  const gitFlag = (name: string) => gitSync.args.find((a) => a.startsWith(`--${name}=`))!.split('=')[1]!;
  const link = path.posix.join(gitFlag('root'), gitFlag('link'));
  assert.ok(args.start!.startsWith(`${link}/`), `-s ${args.start} is under git-sync's link ${link}`);
  const codeVolume = (c: Container) => c.volumeMounts!.find((m) => link.startsWith(`${m.mountPath}/`))?.name;
  assert.ok(codeVolume(liveswap) && codeVolume(liveswap) === codeVolume(gitSync), 'the code volume is shared');
  assert.ok(pod.volumes.find((v) => v.name === codeVolume(liveswap))?.emptyDir);

  // Probes: the health port, and only what it serves.
  const healthPort = args['health-port']!;
  assert.equal(args['health-address'], '0.0.0.0', 'the kubelet reaches the health port on the pod address');
  const portNumber = (port: string | number) => (typeof port === 'number' ? port : liveswap.ports!.find((p) => p.name === port)?.containerPort);
  const probes = [liveswap.startupProbe, liveswap.livenessProbe, liveswap.readinessProbe];
  assert.ok(probes.every(Boolean), 'startup, liveness and readiness probes');
  for (const probe of probes as Probe[]) {
    if (probe.httpGet) {
      assert.ok((HEALTH_PATHS as readonly string[]).includes(probe.httpGet.path), `${probe.httpGet.path} is served`);
      assert.equal(portNumber(probe.httpGet.port), healthPort);
    } else {
      assert.ok(probe.grpc, 'an httpGet or grpc probe');
      assert.equal(probe.grpc.port, healthPort);
      assert.ok(['', 'liveswap.v1.LiveswapService', undefined].includes(probe.grpc.service));
    }
  }
  assert.equal(liveswap.livenessProbe!.httpGet?.path, '/livez', 'liveness asks whether the master runs, not whether workers are ready');

  // The kubelet waits longer than the master drains.
  assert.ok(pod.terminationGracePeriodSeconds * 1000 > drainTimeoutMs(args), `${pod.terminationGracePeriodSeconds} s > the ${drainTimeoutMs(args)} ms drain timeout`);

  // TLS (mTLS) from a Secret, on the control port the headless Service names.
  const tlsFiles = [args['tls-cert'], args['tls-key'], args['tls-ca']];
  assert.ok(tlsFiles.every(Boolean), 'TLS with client certificates');
  const tlsMount = liveswap.volumeMounts!.find((m) => tlsFiles.every((f) => f!.startsWith(`${m.mountPath}/`)))!;
  assert.ok(pod.volumes.find((v) => v.name === tlsMount.name)?.secret?.secretName);
  // One token for the fleet, from a Secret, in the variable a master reads.
  assert.ok(liveswap.env?.find((e) => e.name === MASTER_TOKEN_ENV)?.valueFrom?.secretKeyRef?.name, `${MASTER_TOKEN_ENV} from a Secret`);
  const controlPort = liveswap.ports!.find((p) => p.containerPort === args.port);
  assert.ok(controlPort?.name, `the control port ${args.port} is a named container port`);

  const services = manifests('deploy/kubernetes/service.yaml');
  const headless = services.find((s) => s.spec.clusterIP === 'None')!;
  assert.ok(headless, 'a headless Service');
  assert.deepEqual(headless.spec.selector, spec.template.metadata.labels);
  assert.deepEqual(spec.selector.matchLabels, spec.template.metadata.labels);
  assert.equal(headless.spec.publishNotReadyAddresses, true, 'a rollout sees every master');
  const [servicePort] = headless.spec.ports as { port: number; targetPort: string }[];
  assert.equal(servicePort!.targetPort, controlPort.name);
  assert.match(read('deploy/kubernetes/service.yaml'), new RegExp(`--hosts dns:${headless.metadata.name}\\.\\S+:${servicePort!.port}`));
});

/** A systemd unit: key → every value, in order (a key may repeat). */
function unit(file: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  for (const line of read(file).split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (match) keys.set(match[1]!, [...(keys.get(match[1]!) ?? []), match[2]!]);
  }
  return keys;
}

/** Seconds, as systemd writes a time span here ("45", "45s", "1min 30s"). */
function seconds(span: string): number {
  let total = 0;
  for (const [, n, u] of span.matchAll(/(\d+)\s*(min|s)?/g)) total += Number(n) * (u === 'min' ? 60 : 1);
  return total;
}

test('deploy/systemd/liveswap@.service: reload by SIGHUP, stop by SIGTERM to the master alone, a stop timeout above the drain timeout', async () => {
  const keys = unit('deploy/systemd/liveswap@.service');
  const one = (key: string) => {
    const values = keys.get(key);
    assert.equal(values?.length, 1, `${key}= once`);
    return values![0]!;
  };
  // ExecStart as the master would see it: the specifiers and the unit's default environment filled in.
  const env = Object.fromEntries((keys.get('Environment') ?? []).map((e) => e.split('=', 2) as [string, string]));
  const execStart = one('ExecStart')
    .replace(/%i/g, 'myapp')
    .replace(/%t/g, '/run')
    .replace(/\$\{(\w+)\}/g, (_, name: string) => {
      assert.ok(env[name] !== undefined, `\${${name}} has a default`);
      return env[name]!;
    })
    .split(/\s+/);
  assert.equal(path.basename(execStart[0]!), 'liveswap');
  const args = await liveswapArgs(execStart.slice(1));
  assert.equal(args.follow, true);
  assert.ok(args['health-port'] !== undefined);

  assert.match(one('ExecReload'), /^\/(usr\/)?bin\/kill -HUP \$MAINPID$/);
  assert.equal(keys.get('KillSignal')?.[0] ?? 'SIGTERM', 'SIGTERM');
  assert.equal(one('KillMode'), 'mixed', 'SIGTERM to the master alone; SIGKILL to whatever is left after the timeout');
  assert.ok(seconds(one('TimeoutStopSec')) * 1000 > drainTimeoutMs(args), `TimeoutStopSec=${one('TimeoutStopSec')} > the drain timeout`);
  assert.equal(one('Type'), 'simple');
});
