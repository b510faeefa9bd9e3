import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { StatusConfig } from '../config/agentConfigSchema.ts';

/** Who made a request: named in the log and in a message's history when they act on it. */
export interface Principal {
  /** `admin` (basic), `token`, or `loopback` when no credential is configured. */
  name: string;
  /** True when a configured credential was presented (required to see a message body). */
  authenticated: boolean;
}

export const AUTH_REALM = 'smarthost';

/**
 * Checks the request's credential against status.auth. Without status.auth (allowed on loopback
 * only) every request is the unauthenticated `loopback` principal. Undefined means 401.
 */
export function authenticate(request: IncomingMessage, auth: StatusConfig['auth']): Principal | undefined {
  if (!auth) return { name: 'loopback', authenticated: false };
  const header = request.headers.authorization ?? '';
  const space = header.indexOf(' ');
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer' && auth.token !== undefined && sameSecret(value, auth.token)) {
    return { name: 'token', authenticated: true };
  }
  if (scheme === 'basic' && auth.username !== undefined && auth.password !== undefined) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) {
      const user = decoded.slice(0, colon);
      // Both compared, always: the time taken says nothing about which one was wrong.
      const userOk = sameSecret(user, auth.username);
      const passwordOk = sameSecret(decoded.slice(colon + 1), auth.password);
      if (userOk && passwordOk) return { name: auth.username, authenticated: true };
    }
  }
  return undefined;
}

/** The WWW-Authenticate challenge for a 401: Basic lets a browser ask for the password. */
export function challenge(auth: StatusConfig['auth']): string {
  return auth?.username !== undefined ? `Basic realm="${AUTH_REALM}", charset="UTF-8"` : `Bearer realm="${AUTH_REALM}"`;
}

/** Compares digests so neither the length nor the content leaks through timing. */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
