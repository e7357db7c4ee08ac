/** Master values → the wire types generated from the proto. */
import {
  ReadyMode as ProtoReadyMode,
  WorkerState as ProtoWorkerState,
  type Transition,
  type Worker,
  type WorkerCounts,
} from '../gen/liveswap/v1/liveswap.js';
import { invalidArgument } from '../common/errors.js';
import type { ReadyMode } from '../common/config.js';
import type { PoolTransition, WorkerCounts as Counts } from '../supervisor/pool.js';
import type { WorkerInfo, WorkerStateName } from '../supervisor/worker-handle.js';

const STATE: Record<WorkerStateName, ProtoWorkerState> = {
  starting: ProtoWorkerState.WORKER_STATE_STARTING,
  ready: ProtoWorkerState.WORKER_STATE_READY,
  draining: ProtoWorkerState.WORKER_STATE_DRAINING,
  exited: ProtoWorkerState.WORKER_STATE_EXITED,
};

export function toProtoState(state: WorkerStateName | undefined): ProtoWorkerState {
  return state ? STATE[state] : ProtoWorkerState.WORKER_STATE_UNSPECIFIED;
}

export function toProtoReadyMode(mode: ReadyMode | undefined): ProtoReadyMode {
  if (mode === 'listening') return ProtoReadyMode.READY_MODE_LISTENING;
  if (mode === 'message') return ProtoReadyMode.READY_MODE_MESSAGE;
  if (mode === 'first-listen') return ProtoReadyMode.READY_MODE_FIRST_LISTEN;
  return ProtoReadyMode.READY_MODE_UNSPECIFIED;
}

export function fromProtoReadyMode(mode: ProtoReadyMode): ReadyMode | undefined {
  switch (mode) {
    case ProtoReadyMode.READY_MODE_LISTENING:
      return 'listening';
    case ProtoReadyMode.READY_MODE_MESSAGE:
      return 'message';
    case ProtoReadyMode.READY_MODE_FIRST_LISTEN:
      return 'first-listen';
    case ProtoReadyMode.READY_MODE_UNSPECIFIED:
      return undefined;
    default:
      // A number this version does not know (a newer client, or garbage): refuse rather than guess.
      throw invalidArgument(
        `ready_mode ${String(mode)} is not a ReadyMode: use 0 (default), 1 (listening), 2 (message) or 3 (first-listen)`,
      );
  }
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
  };
}

export function toProtoCounts(counts: Counts): WorkerCounts {
  return { ...counts };
}

export function toProtoTransition(event: PoolTransition): Transition {
  return {
    worker: toProtoWorker(event.worker),
    fromState: toProtoState(event.from),
    toState: toProtoState(event.to),
    counts: toProtoCounts(event.counts),
    time: event.time,
    sequence: event.sequence,
  };
}
