/**
 * A fleet rollout: one Upgrade rolled across many masters.
 *
 * The first host is the canary; the others follow `batch` at a time (1 by
 * default). Each host is upgraded by its own master, with its usual
 * guarantees (never fewer than N ready workers; a failing release rolls back
 * on that host by itself). At the first failure the rollout stops: every
 * host already upgraded is rolled back to the release it ran before (the
 * master says which, in UpgradeResponse.previous_target), and hosts not yet
 * reached are left alone. Before anything is touched every host must answer
 * GetStatus: a fleet with a host down is not rolled at all.
 *
 * Each host's story is a sequence of events (upgrading → upgraded, or
 * failed; then rolling-back → rolled-back or rollback-failed), reported as
 * they happen; the result names every host's final state.
 */
import { connect, LiveswapClientError, type ConnectOptions, type LiveswapClient, type UpgradeRequest } from '../client/index.js';
import { SettingError } from '../common/errors.js';
import { resolveHosts, type FleetHost, type Lookup } from './hosts.js';

export type HostState = 'untouched' | 'upgrading' | 'upgraded' | 'failed' | 'rolling-back' | 'rolled-back' | 'rollback-failed';

export interface HostEvent {
  host: string;
  state: HostState;
  /** What it means, in one line: the generation reached, the failure's reason, the release rolled back to. */
  detail: string;
  /** The host is the canary (the first). */
  canary: boolean;
}

export interface HostResult {
  host: string;
  /** The final state: upgraded, failed (its master rolled back by itself), rolled-back, rollback-failed or untouched. */
  state: HostState;
  /** The generation the host serves at the end, when known. */
  generation?: number;
  /** The release the host serves at the end (absolute, symlinks resolved), when known. */
  target?: string;
  /** The release it ran before this rollout. */
  previousTarget?: string;
  /** Why it failed (the upgrade, or its rollback). */
  error?: { code: string; message: string; stderrTail: string[] };
}

export interface RolloutResult {
  ok: boolean;
  /** The target as sent to every host. */
  target: string;
  hosts: HostResult[];
  /** The host that failed first, and why. */
  failedHost?: string;
  reason?: string;
  /** Some upgraded host could not be rolled back: it serves the new release while others serve the old. */
  rollbackFailed: boolean;
}

export interface FleetOptions {
  /** --hosts: "h1:3000,h2:3000", "dns:app-headless:3000", or the entries as an array. */
  hosts: string | readonly string[];
  /** How to reach each master beyond its address and port: token, TLS, state directory, deadline. */
  connect?: Omit<ConnectOptions, 'address' | 'port' | 'socket'>;
  /** @internal name resolution for dns: entries (default: the system resolver). */
  lookup?: Lookup;
}

export interface RolloutOptions extends FleetOptions {
  /** Absolute path of the release, the same on every host. */
  target: string;
  /** Hosts upgraded at once after the canary (default 1). */
  batch?: number;
  /** Passed to every Upgrade (ready mode, timeouts, hook data). */
  upgrade?: Partial<Omit<UpgradeRequest, 'target'>>;
  /** Called at every host's every step, as it happens. */
  onEvent?: (event: HostEvent) => void;
}

interface Member {
  host: FleetHost;
  client: LiveswapClient;
  result: HostResult;
}

function errorOf(error: unknown): NonNullable<HostResult['error']> {
  if (error instanceof LiveswapClientError) return { code: error.codeName, message: error.message, stderrTail: error.stderrTail };
  return { code: 'UNKNOWN', message: (error as Error)?.message ?? String(error), stderrTail: [] };
}

/** Connects to every host of the list (resolved once). Close the clients when done. */
async function fleetOf(options: FleetOptions): Promise<Member[]> {
  const hosts = await resolveHosts(options.hosts, options.lookup);
  return hosts.map((host) => ({
    host,
    client: connect({ ...options.connect, address: host.address, port: host.port }),
    result: { host: host.name, state: 'untouched' },
  }));
}

export async function rollout(options: RolloutOptions): Promise<RolloutResult> {
  const batch = options.batch ?? 1;
  if (!Number.isInteger(batch) || batch < 1) {
    throw new SettingError(`--batch must be a whole number of at least 1, got ${batch}`);
  }
  const fleet = await fleetOf(options);
  const result: RolloutResult = { ok: false, target: options.target, hosts: fleet.map((m) => m.result), rollbackFailed: false };
  const report = (member: Member, state: HostState, detail: string) => {
    member.result.state = state;
    options.onEvent?.({ host: member.host.name, state, detail, canary: member === fleet[0] });
  };
  try {
    // Every host must answer before any is touched.
    const unreachable = (await Promise.all(fleet.map((m) => m.client.status().then(() => undefined, (error: unknown) => ({ m, error })))))
      .filter((x) => x !== undefined);
    if (unreachable.length > 0) {
      const first = unreachable[0]!;
      first.m.result.error = errorOf(first.error);
      result.failedHost = first.m.host.name;
      result.reason = `${unreachable.length} host(s) did not answer, so none was touched: ${first.m.host.name}: ${first.m.result.error.message}`;
      return result;
    }

    const waves = [fleet.slice(0, 1), ...chunks(fleet.slice(1), batch)];
    const upgraded: Member[] = [];
    for (const wave of waves) {
      const failures = (await Promise.all(wave.map((m) => upgradeOne(m, options, report, upgraded)))).filter((f) => f !== undefined);
      if (failures.length === 0) continue;
      const first = failures[0]!;
      result.failedHost = first.host.name;
      result.reason = first.result.error!.message;
      await Promise.all(upgraded.map((m) => rollBackOne(m, options, report)));
      result.rollbackFailed = upgraded.some((m) => m.result.state === 'rollback-failed');
      return result;
    }
    result.ok = true;
    return result;
  } finally {
    for (const member of fleet) member.client.close();
  }
}

/** Upgrades one host; returns it if it failed. */
async function upgradeOne(
  member: Member,
  options: RolloutOptions,
  report: (member: Member, state: HostState, detail: string) => void,
  upgraded: Member[],
): Promise<Member | undefined> {
  report(member, 'upgrading', `upgrading to ${options.target}`);
  try {
    const reply = await member.client.upgrade({ ...options.upgrade, target: options.target });
    Object.assign(member.result, { generation: reply.generation, target: reply.target, previousTarget: reply.previousTarget });
    upgraded.push(member);
    report(member, 'upgraded', `generation ${reply.generation} (${reply.target}) in ${reply.durationMs} ms`);
    return undefined;
  } catch (error) {
    member.result.error = errorOf(error);
    report(member, 'failed', member.result.error.message);
    return member;
  }
}

async function rollBackOne(member: Member, options: RolloutOptions, report: (member: Member, state: HostState, detail: string) => void): Promise<void> {
  const previous = member.result.previousTarget;
  if (!previous) {
    member.result.error = { code: 'FAILED_PRECONDITION', message: 'it ran no release before this rollout: nothing to roll back to', stderrTail: [] };
    report(member, 'rollback-failed', member.result.error.message);
    return;
  }
  report(member, 'rolling-back', `rolling back to ${previous}`);
  try {
    const reply = await member.client.upgrade({ ...options.upgrade, target: previous });
    Object.assign(member.result, { generation: reply.generation, target: reply.target });
    report(member, 'rolled-back', `generation ${reply.generation} (${reply.target})`);
  } catch (error) {
    member.result.error = errorOf(error);
    report(member, 'rollback-failed', member.result.error.message);
  }
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export interface HostStatus {
  host: string;
  /** The master's status, or why it did not answer. */
  status?: Awaited<ReturnType<LiveswapClient['status']>>;
  error?: HostResult['error'];
}

/** GetStatus on every host at once (--status --hosts). */
export async function fleetStatus(options: FleetOptions): Promise<HostStatus[]> {
  const fleet = await fleetOf(options);
  try {
    return await Promise.all(
      fleet.map((m) =>
        m.client.status().then(
          (status) => ({ host: m.host.name, status }),
          (error: unknown) => ({ host: m.host.name, error: errorOf(error) }),
        ),
      ),
    );
  } finally {
    for (const member of fleet) member.client.close();
  }
}
