/**
 * The one mapping between the ready modes as the CLI and the API write them
 * (config.ts) and the proto's ReadyMode enum.
 */
import { ReadyMode as ProtoReadyMode } from '../gen/liveswap/v1/liveswap.js';
import type { ReadyMode } from './config.js';
import { invalidArgument } from './errors.js';

const PROTO: Record<ReadyMode, ProtoReadyMode> = {
  listening: ProtoReadyMode.READY_MODE_LISTENING,
  message: ProtoReadyMode.READY_MODE_MESSAGE,
  'first-listen': ProtoReadyMode.READY_MODE_FIRST_LISTEN,
};
const BY_NUMBER = new Map(Object.entries(PROTO).map(([name, number]) => [number, name as ReadyMode]));

/** undefined (the master's default) → UNSPECIFIED. */
export function toProtoReadyMode(mode: ReadyMode | undefined): ProtoReadyMode {
  return mode === undefined ? ProtoReadyMode.READY_MODE_UNSPECIFIED : PROTO[mode];
}

/** The mode's name; undefined for UNSPECIFIED and for a number this version does not know. */
export function readyModeName(mode: ProtoReadyMode): ReadyMode | undefined {
  return BY_NUMBER.get(mode);
}

/** A ready mode received from a client: UNSPECIFIED is undefined (the default); a number this version does not know is refused rather than guessed. */
export function fromProtoReadyMode(mode: ProtoReadyMode): ReadyMode | undefined {
  if (mode === ProtoReadyMode.READY_MODE_UNSPECIFIED) return undefined;
  const name = readyModeName(mode);
  if (name) return name;
  const known = [...BY_NUMBER].sort(([a], [b]) => a - b).map(([number, name]) => `${number} (${name})`);
  throw invalidArgument(`ready_mode ${String(mode)} is not a ReadyMode: use 0 (default), ${known.slice(0, -1).join(', ')} or ${known.at(-1)}`);
}
