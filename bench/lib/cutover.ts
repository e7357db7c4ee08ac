/** When an upgrade moved the traffic: read from the load generator's requests. */
import { answeredAt, isFailure, type Request } from './load.js';

export interface UpgradeWindow {
  from: string;
  to: string;
  startedAt: number;
  returnedAt: number;
  firstNewMs: number;
  lastOldMs: number;
}

/** The version that answered (the fixture apps answer with their name). */
export const body = (r: Request) => r.outcome.slice('body:'.length);

/** When the first new-version and the last old-version answers came, relative to the upgrade's start. */
export function cutover(requests: readonly Request[], window: Omit<UpgradeWindow, 'firstNewMs' | 'lastOldMs'>, until: number) {
  const after = requests.filter((r) => answeredAt(r) >= window.startedAt && answeredAt(r) < until && !isFailure(r));
  const firstNew = Math.min(...after.filter((r) => body(r) === window.to).map(answeredAt));
  const lastOld = Math.max(...after.filter((r) => body(r) === window.from).map(answeredAt));
  return { firstNewMs: firstNew - window.startedAt, lastOldMs: lastOld - window.startedAt };
}
