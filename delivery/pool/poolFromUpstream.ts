import { CLOUD_PRESETS } from '../cloudPresets.ts';
import { createUpstreamSubmitter } from '../createUpstreamSubmitter.ts';
import type { UpstreamConfig } from '../upstreamConfig.ts';
import type { MailboxBudgetStore } from './mailboxBudget.ts';
import { MailboxPool, type MailboxPoolOptions, type PoolMemberInput } from './mailboxPool.ts';
import { poolMembers } from './poolMembers.ts';

export interface PoolFromUpstreamOptions {
  /**
   * Processes delivering through the same mailboxes at once (the cloud's function instances):
   * each opens its part of a mailbox's connections, and of the per-minute and per-recipient
   * limits unless `shared` counts those for all of them.
   */
  sharedBy?: number;
  /** Where each mailbox's recipients per 24 hours (and, when shared, messages per minute) are counted. */
  budgetStore?: MailboxBudgetStore;
  /** The budget store is shared by the `sharedBy` processes: per-minute and per-day limits are theirs together. */
  shared?: boolean;
  logger?: MailboxPoolOptions['logger'];
}

/**
 * The pool an `upstream` block delivers through, on the office box and in the cloud alike: each
 * of `mailboxes` (or the block itself as a pool of one) with its own submitter and limits. The
 * pool schedules by each mailbox's rate (SendRate), so the submitters do not.
 */
export function poolFromUpstream(upstream: UpstreamConfig, options: PoolFromUpstreamOptions = {}): MailboxPool {
  const sharedBy = options.sharedBy ?? 1;
  // Without a shared count every process keeps to its part of the mailbox's limits.
  const part = (limit: number) => (options.shared ? limit : Math.max(1, Math.floor(limit / sharedBy)));
  const members: PoolMemberInput[] = poolMembers(upstream).map((member) => {
    const { submitter, tokens } = createUpstreamSubmitter(member.upstream, sharedBy, true);
    const { rateLimit } = member.upstream;
    return {
      mailbox: member.mailbox,
      sendAs: member.sendAs,
      submitter,
      route: routeName(member.upstream),
      connections: Math.max(1, Math.floor(rateLimit.connections / sharedBy)),
      perMinute: part(rateLimit.perMinute),
      recipientsPerDay: part(rateLimit.recipientsPerDay),
      ...(tokens ? { tokens } : {}),
    };
  });
  return new MailboxPool(members, {
    ...(options.budgetStore ? { budgetStore: options.budgetStore } : {}),
    // Counted in each process's memory only: its part.
    perRecipientPerHour: Math.max(1, Math.floor(upstream.rateLimit.perRecipientPerHour / sharedBy)),
    ...(options.logger ? { logger: options.logger } : {}),
  });
}

/** How mail leaves through one mailbox, for the history. */
export function routeName(upstream: UpstreamConfig): string {
  return upstream.route === 'graph' ? `graph ${upstream.graph?.baseUrl ?? CLOUD_PRESETS.worldwide.graphBaseUrl}` : `smtp ${upstream.host}:${upstream.port}`;
}
