import type { UpstreamAuthConfig, UpstreamConfig } from '../upstreamConfig.ts';

/** One mailbox of the pool, as a complete upstream block of its own (what a submitter is built from). */
export interface PoolMemberConfig {
  /** The address it authenticates as; absent only for `auth: none` (a smart host without a mailbox). */
  mailbox: string | undefined;
  /** Lowercased addresses it may send as, besides itself. */
  sendAs: string[];
  upstream: UpstreamConfig;
}

/**
 * The mailboxes an upstream block sends through: each of `mailboxes` with upstream's values where
 * it gives none of its own, or the block itself as a pool of one.
 */
export function poolMembers(upstream: UpstreamConfig): PoolMemberConfig[] {
  const { mailboxes, ...shared } = upstream;
  if (!mailboxes) {
    return [{ mailbox: upstream.auth.type === 'none' ? undefined : upstream.auth.user, sendAs: [], upstream: shared }];
  }
  return mailboxes.map((member) => {
    const own = member.rateLimit ?? {};
    const rateLimit = {
      ...shared.rateLimit,
      ...(own.perMinute === undefined ? {} : { perMinute: own.perMinute }),
      ...(own.connections === undefined ? {} : { connections: own.connections }),
      ...(own.recipientsPerDay === undefined ? {} : { recipientsPerDay: own.recipientsPerDay }),
    };
    const memberUpstream: UpstreamConfig = {
      ...shared,
      route: member.route ?? shared.route,
      auth: member.auth ?? asUser(shared.auth, member.mailbox),
      rateLimit,
    };
    return { mailbox: member.mailbox, sendAs: member.sendAs.map((a) => a.toLowerCase()), upstream: memberUpstream };
  });
}

function asUser(auth: UpstreamAuthConfig, mailbox: string): UpstreamAuthConfig {
  return auth.type === 'none' ? auth : { ...auth, user: mailbox };
}
