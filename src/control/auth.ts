/**
 * Token authentication of the TCP control service: a grpc-js server
 * interceptor that checks `authorization: Bearer <token>` on every call of
 * the Liveswap service, streams included, before any handler runs. Health
 * checking and reflection are left open (Kubernetes gRPC probes cannot send
 * metadata; reflection describes the public contract only).
 *
 * Tokens are compared in constant time (SHA-256 digests of both, which have
 * equal lengths, through crypto.timingSafeEqual) and never logged.
 */
import {
  ServerInterceptingCall,
  status,
  type Metadata,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import crypto from 'node:crypto';
import type { Logger } from '../common/logger.js';

/** Services anyone who can connect may call (see the README's Security section). */
const OPEN_SERVICES = ['/grpc.health.v1.Health/', '/grpc.reflection.v1.ServerReflection/', '/grpc.reflection.v1alpha.ServerReflection/'];

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

function tokenMatches(given: string, expected: Buffer): boolean {
  return crypto.timingSafeEqual(digest(given), expected);
}

/** Why a call's metadata does not authenticate it, or undefined if it does. */
function refusal(metadata: Metadata, expected: Buffer): string | undefined {
  const values = metadata.get('authorization');
  if (values.length === 0) {
    return 'missing token: send "authorization: Bearer <token>" metadata (liveswap --token or LIVESWAP_TOKEN); the master writes its token to a file in its state directory (liveswap --help, --state-dir)';
  }
  const match = /^Bearer +(\S+)\s*$/i.exec(String(values[0]));
  if (!match) return 'malformed authorization metadata: expected "Bearer <token>"';
  if (!tokenMatches(match[1]!, expected)) {
    return 'wrong token: the master makes a new token at every start; use the one in its current token file (or LIVESWAP_TOKEN / --token)';
  }
  return undefined;
}

/** Refused calls are logged (method, peer and why; never a token) so an operator sees a misconfigured or hostile client. */
export function tokenInterceptor(token: string, log: Logger): ServerInterceptor {
  const expected = digest(token);
  return (methodDescriptor, call) => {
    if (OPEN_SERVICES.some((prefix) => methodDescriptor.path.startsWith(prefix))) return new ServerInterceptingCall(call);
    return new ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, nextMetadata) {
            const why = refusal(metadata, expected);
            if (why) {
              log.warn(`refused ${methodDescriptor.path} from ${call.getPeer()}: ${why.slice(0, why.indexOf(':'))}`);
              call.sendStatus({ code: status.UNAUTHENTICATED, details: why });
            }
            else nextMetadata(metadata);
          },
        });
      },
    });
  };
}
