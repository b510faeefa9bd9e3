import { certificateNotAfter } from '../token/certificateExpiry.ts';
import type { TokenHealth } from '../token/tokenProvider.ts';
import type { UpstreamSource } from '../submitterForUpstream.ts';
import type { UpstreamConfig } from '../upstreamConfig.ts';
import type { MailboxPool } from './mailboxPool.ts';
import { poolFromUpstream, type PoolFromUpstreamOptions } from './poolFromUpstream.ts';
import { poolMembers } from './poolMembers.ts';

/** What the pool's credentials look like, for the CredentialExpiresInDays metric. */
export interface PoolCredentialHealth {
  certificateNotAfter?: number;
  token?: TokenHealth;
}

/** The mailbox pool a cloud runtime delivers through: built once from an inline block, or from a secret and again after it changed. */
export interface PoolSource {
  current(): Promise<MailboxPool>;
  /** The credentials of the pool last built; undefined before. */
  credentialHealth(): PoolCredentialHealth | undefined;
  close(): Promise<void>;
}

export interface PoolSourceOptions extends PoolFromUpstreamOptions {
  /** Seconds a read secret is reused before it is read again (rotation pick-up). @default 300 */
  secretTtlSeconds?: number;
  /** Replaces the Secrets Manager client (tests). */
  secrets?: import('@aws-lambda-powertools/parameters/secrets').SecretsProvider;
}

/** The pool source an upstream source asks for; both cloud entries go through here. */
export function poolSourceFor(upstream: UpstreamSource, options: PoolSourceOptions = {}): PoolSource {
  if ('secretArn' in upstream) {
    // Loaded on first use: it brings the AWS SDK's Secrets Manager client.
    const source = import('./secretPoolSource.ts').then(({ SecretPoolSource }) => new SecretPoolSource(upstream.secretArn, options));
    let loaded: PoolSource | undefined;
    void source.then((s) => (loaded = s), () => undefined);
    return {
      current: async () => (await source).current(),
      credentialHealth: () => loaded?.credentialHealth(),
      close: async () => (await source).close(),
    };
  }
  const pool = poolFromUpstream(upstream, options);
  const loaded = pool.load();
  return {
    current: async () => {
      await loaded;
      return pool;
    },
    credentialHealth: () => poolCredentialHealth(upstream, pool),
    close: () => pool.close(),
  };
}

/** The soonest certificate expiry of the pool's mailboxes, and the token of one whose renewal fails (else the first's). */
export function poolCredentialHealth(upstream: UpstreamConfig, pool: MailboxPool): PoolCredentialHealth {
  const expiries = poolMembers(upstream).flatMap((member) => certificateNotAfter(member.upstream) ?? []);
  const tokens = pool.members.flatMap((member) => (member.tokens ? [member.tokens.health()] : []));
  const token = tokens.find((health) => health.renewalFailedAt !== undefined) ?? tokens[0];
  return { ...(expiries.length > 0 ? { certificateNotAfter: Math.min(...expiries) } : {}), ...(token ? { token } : {}) };
}
