import { createUpstreamSubmitter } from './createUpstreamSubmitter.ts';
import type { Submitter } from './smtp/submission.ts';
import type { TokenHealth } from './token/tokenProvider.ts';
import type { UpstreamConfig } from './upstreamConfig.ts';

/** Where the upstream block comes from: inline, or a Secrets Manager secret holding the same JSON. */
export type UpstreamSource = UpstreamConfig | { secretArn: string };

export interface ChosenSubmitter {
  submitter: Submitter;
  /** The mailbox the upstream authenticates as (operator hints); a secret's is known once it is read. */
  mailbox: () => Promise<string | undefined>;
  /** Deliveries at once: the mailbox's connection limit. */
  connections: number;
  /**
   * Deliveries the caller must start per minute at most when it asked to limit the rate itself
   * (`callerLimitsRate`); absent when the submitter limits it (always for a secret, whose limit
   * is known only once it is read).
   */
  perMinute?: number;
  /** The token client of an inline oauth2 block, for its health (the office box's alerts). */
  tokens?: { health(): TokenHealth };
}

/** Exchange Online's concurrent connections per mailbox, used until a secret's own rateLimit is read. */
const SECRET_DEFAULT_CONNECTIONS = 3;

/** The submitter an upstream source asks for; every runtime that delivers goes through here. */
export async function submitterForUpstream(
  upstream: UpstreamSource,
  options: { secretTtlSeconds?: number; sharedBy?: number; callerLimitsRate?: boolean } = {},
): Promise<ChosenSubmitter> {
  if ('secretArn' in upstream) {
    // Loaded only here: it brings the AWS SDK's Secrets Manager client.
    const { SecretUpstreamSubmitter } = await import('./secretUpstreamSubmitter.ts');
    const submitter = new SecretUpstreamSubmitter(upstream.secretArn, { ttlSeconds: options.secretTtlSeconds ?? 300, sharedBy: options.sharedBy });
    return { submitter, mailbox: () => submitter.mailbox(), connections: SECRET_DEFAULT_CONNECTIONS };
  }
  // A secret's rate is known only inside its submitter, which then limits it itself.
  const { submitter, mailbox, tokens } = createUpstreamSubmitter(upstream, options.sharedBy, options.callerLimitsRate === true);
  return { submitter, mailbox: async () => mailbox, ...(tokens ? { tokens } : {}), connections: upstream.rateLimit.connections, ...(options.callerLimitsRate ? { perMinute: upstream.rateLimit.perMinute } : {}) };
}
