/**
 * Who asked for an operation, and the one mapping of it onto the proto's
 * Origin enum: a control call, SIGHUP, the followed link (--follow), or the
 * in-process API.
 */
import { Origin as ProtoOrigin } from '../gen/liveswap/v1/liveswap.js';

export const ORIGINS = ['rpc', 'sighup', 'follow', 'api'] as const;
export type Origin = (typeof ORIGINS)[number];

const PROTO: Record<Origin, ProtoOrigin> = {
  rpc: ProtoOrigin.ORIGIN_RPC,
  sighup: ProtoOrigin.ORIGIN_SIGHUP,
  follow: ProtoOrigin.ORIGIN_FOLLOW,
  api: ProtoOrigin.ORIGIN_API,
};
const BY_NUMBER = new Map(Object.entries(PROTO).map(([name, number]) => [number, name as Origin]));

/** undefined (no operation) → UNSPECIFIED. */
export function toProtoOrigin(origin: Origin | undefined): ProtoOrigin {
  return origin === undefined ? ProtoOrigin.ORIGIN_UNSPECIFIED : PROTO[origin];
}

/** The origin's name; undefined for UNSPECIFIED and for a number this version does not know. */
export function originName(origin: ProtoOrigin): Origin | undefined {
  return BY_NUMBER.get(origin);
}
