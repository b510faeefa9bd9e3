import { randomBytes } from 'node:crypto';

/**
 * Ids sort by arrival (a fixed-width base-36 millisecond clock first), so a directory listing is
 * already oldest-first, and the random tail keeps two agents or a restarted one from colliding.
 */
export function newMessageId(now: Date = new Date()): string {
  const clock = now.getTime().toString(36).padStart(9, '0');
  return `${clock}-${randomBytes(9).toString('base64url')}`;
}
