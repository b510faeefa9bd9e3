import { randomBytes } from 'node:crypto';

// Random once per process, then a counter: unique across agents and restarts without asking the
// kernel for random bytes on every message.
const processTag = randomBytes(6).toString('base64url');
let counter = 0;

/**
 * Ids sort by arrival (a fixed-width base-36 millisecond clock first), so a directory listing is
 * already oldest-first, and the per-process tail keeps two agents or a restarted one from colliding.
 */
export function newMessageId(now: Date = new Date()): string {
  const clock = now.getTime().toString(36).padStart(9, '0');
  counter = (counter + 1) % 36 ** 5;
  return `${clock}-${processTag}${counter.toString(36).padStart(5, '0')}`;
}

/** When a message with this id arrived (its clock part); undefined for an id of another shape. */
export function arrivalOf(id: string): Date | undefined {
  const ms = Number.parseInt(id.slice(0, 9), 36);
  return id.length > 9 && id[9] === '-' && Number.isFinite(ms) ? new Date(ms) : undefined;
}
