/** Master values → the wire types generated from the proto. */
import {
  UpgradeOutcome as ProtoUpgradeOutcome,
  WorkerState as ProtoWorkerState,
  type Transition,
  type UpgradeRecord,
  type Worker,
  type WorkerCounts,
} from '../gen/liveswap/v1/liveswap.js';
import { toProtoOrigin } from '../common/origin.js';
import type { MasterTransition, UpgradeReport } from '../supervisor/master.js';
import type { UpgradeOutcomeName } from '../supervisor/upgrade.js';
import type { WorkerCounts as Counts } from '../supervisor/pool.js';
import type { WorkerInfo, WorkerStateName } from '../supervisor/worker-handle.js';

export { fromProtoReadyMode, toProtoReadyMode } from '../common/ready-mode.js';
export { toProtoOrigin } from '../common/origin.js';

const STATE: Record<WorkerStateName, ProtoWorkerState> = {
  starting: ProtoWorkerState.WORKER_STATE_STARTING,
  ready: ProtoWorkerState.WORKER_STATE_READY,
  draining: ProtoWorkerState.WORKER_STATE_DRAINING,
  exited: ProtoWorkerState.WORKER_STATE_EXITED,
};

export function toProtoState(state: WorkerStateName | undefined): ProtoWorkerState {
  return state ? STATE[state] : ProtoWorkerState.WORKER_STATE_UNSPECIFIED;
}

export function toProtoWorker(worker: WorkerInfo): Worker {
  return {
    id: worker.id,
    pid: worker.pid,
    state: toProtoState(worker.state),
    generation: worker.generation,
    target: worker.target,
    startedAt: worker.startedAt,
    readyAt: worker.readyAt,
    restarts: worker.restarts,
    exitCode: worker.exitCode,
    exitSignal: worker.exitSignal ?? '',
    reason: worker.reason,
    listening: worker.listening,
    stderrTail: worker.stderrTail ?? [],
    nodeVersion: worker.nodeVersion,
  };
}

export function toProtoCounts(counts: Counts): WorkerCounts {
  return { ...counts };
}

const OUTCOME: Record<UpgradeOutcomeName, ProtoUpgradeOutcome> = {
  ok: ProtoUpgradeOutcome.UPGRADE_OUTCOME_OK,
  rolled_back: ProtoUpgradeOutcome.UPGRADE_OUTCOME_ROLLED_BACK,
  vetoed: ProtoUpgradeOutcome.UPGRADE_OUTCOME_VETOED,
  aborted: ProtoUpgradeOutcome.UPGRADE_OUTCOME_ABORTED,
  failed: ProtoUpgradeOutcome.UPGRADE_OUTCOME_FAILED,
};

export function toProtoUpgradeRecord(report: UpgradeReport): UpgradeRecord {
  return { ...report, origin: toProtoOrigin(report.origin), outcome: OUTCOME[report.outcome] };
}

export function toProtoTransition(event: MasterTransition): Transition {
  return {
    worker: toProtoWorker(event.worker),
    fromState: toProtoState(event.from),
    toState: toProtoState(event.to),
    counts: toProtoCounts(event.counts),
    time: event.time,
    sequence: event.sequence,
    origin: toProtoOrigin(event.origin),
  };
}
