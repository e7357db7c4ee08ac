/**
 * Token authentication of the TCP control service: a grpc-js server
 * interceptor that checks `authorization: Bearer <token>` on every call,
 * streams included, before any handler runs. Two tokens: the full one may
 * call everything; the read-only one (for monitoring) GetStatus,
 * WatchWorkers and reflection, and gets PERMISSION_DENIED for the rest.
 * Health checking alone is open (Kubernetes gRPC probes cannot send
 * metadata; it says up or down, nothing more). Reflection needs a token:
 * @grpc/reflection answers every request on a stream without back-pressure,
 * so an open reflection service let anyone who could connect grow the
 * master's memory without bound (docs/security.md).
 *
 * Tokens are compared in constant time (SHA-256 digests of both, which have
 * equal lengths, through crypto.timingSafeEqual) and never logged. Refusals
 * are logged aggregated (refusal-log.ts).
 */
import {
  ServerInterceptingCall,
  status,
  type Metadata,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import crypto from 'node:crypto';
import type { RefusalLog } from './refusal-log.js';

/** Services anyone who can connect may call (see docs/security.md). */
const OPEN_SERVICES = ['/grpc.health.v1.Health/'];

/** What the read-only token may call. */
const READ_ONLY_METHODS = [
  '/liveswap.v1.LiveswapService/GetStatus',
  '/liveswap.v1.LiveswapService/WatchWorkers',
  '/grpc.reflection.v1.ServerReflection/',
  '/grpc.reflection.v1alpha.ServerReflection/',
];

export interface Tokens {
  full: string;
  readOnly: string;
}

/**
 * 256 random bits, base64url, never starting with '-': one token in 64 would,
 * and `liveswap --token -x…` reads as flags (yargs takes an argument that
 * starts with '-' for an option), so a user pasting it would get "Unknown
 * arguments". Drawing again costs under 0.03 bits of the 256.
 */
export function generateToken(): string {
  for (;;) {
    const token = crypto.randomBytes(32).toString('base64url');
    if (!token.startsWith('-')) return token;
  }
}

const digest = (value: string) => crypto.createHash('sha256').update(value).digest();

type Verdict = { allowed: true } | { allowed: false; code: status; details: string };

/** Whether a call's metadata lets it call `path`, and if not, why. */
function verdict(metadata: Metadata, path: string, expected: { full: Buffer; readOnly: Buffer }): Verdict {
  const values = metadata.get('authorization');
  if (values.length === 0) {
    return {
      allowed: false,
      code: status.UNAUTHENTICATED,
      details:
        'missing token: send "authorization: Bearer <token>" metadata (liveswap --token-file or LIVESWAP_TOKEN); the master writes its token to a file in its state directory (liveswap --help, --state-dir)',
    };
  }
  const match = /^Bearer +(\S+)\s*$/i.exec(String(values[0]));
  if (!match) return { allowed: false, code: status.UNAUTHENTICATED, details: 'malformed authorization metadata: expected "Bearer <token>"' };
  const given = digest(match[1]!);
  // Both comparisons always run: which token matched takes no measurable time to tell.
  const full = crypto.timingSafeEqual(given, expected.full);
  const readOnly = crypto.timingSafeEqual(given, expected.readOnly);
  if (full) return { allowed: true };
  if (readOnly) {
    if (READ_ONLY_METHODS.some((allowed) => path.startsWith(allowed))) return { allowed: true };
    return {
      allowed: false,
      code: status.PERMISSION_DENIED,
      details: `read-only token: it may call GetStatus and WatchWorkers only, not ${path.slice(path.lastIndexOf('/') + 1)}; use the master's full token`,
    };
  }
  return {
    allowed: false,
    code: status.UNAUTHENTICATED,
    details: 'wrong token: the master makes a new token at every start; use the one in its current token file (or LIVESWAP_TOKEN / --token-file)',
  };
}

/** Refused calls go to the refusal log (method, peer and why; never a token). */
export function tokenInterceptor(tokens: Tokens, refusals: RefusalLog): ServerInterceptor {
  const expected = { full: digest(tokens.full), readOnly: digest(tokens.readOnly) };
  return (methodDescriptor, call) => {
    if (OPEN_SERVICES.some((prefix) => methodDescriptor.path.startsWith(prefix))) return new ServerInterceptingCall(call);
    return new ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, nextMetadata) {
            const result = verdict(metadata, methodDescriptor.path, expected);
            if (result.allowed) {
              nextMetadata(metadata);
              return;
            }
            refusals.record(call.getPeer(), methodDescriptor.path, result.details.slice(0, result.details.indexOf(':')));
            call.sendStatus({ code: result.code, details: result.details });
          },
        });
      },
    });
  };
}
