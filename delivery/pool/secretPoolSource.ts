import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { readUpstreamSecret } from '../upstreamSecret.ts';
import type { UpstreamConfig } from '../upstreamConfig.ts';
import type { MailboxPool } from './mailboxPool.ts';
import { poolFromUpstream } from './poolFromUpstream.ts';
import { poolCredentialHealth, type PoolCredentialHealth, type PoolSource, type PoolSourceOptions } from './poolSource.ts';

/**
 * The pool of the `upstream` JSON in a Secrets Manager secret (which may list `mailboxes`): read
 * again once the TTL passed, and rebuilt only when the secret's content changed, so a rotated
 * secret or a new mailbox is picked up without a restart. The budget store outlives the pools:
 * a mailbox's counts stay where they are.
 */
export class SecretPoolSource implements PoolSource {
  private built: { digest: string; pool: MailboxPool; config: UpstreamConfig } | undefined;
  private reading: Promise<MailboxPool> | undefined;
  private readonly secrets: SecretsProvider;

  constructor(
    private readonly secretArn: string,
    private readonly options: PoolSourceOptions,
  ) {
    this.secrets = options.secrets ?? new SecretsProvider();
  }

  /** One read at a time: records of one batch asking together share it (and build one pool). */
  current(): Promise<MailboxPool> {
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  credentialHealth(): PoolCredentialHealth | undefined {
    return this.built ? poolCredentialHealth(this.built.config, this.built.pool) : undefined;
  }

  async close(): Promise<void> {
    await this.built?.pool.close();
    this.built = undefined;
  }

  private async read(): Promise<MailboxPool> {
    const read = await readUpstreamSecret(this.secrets, this.secretArn, this.options.secretTtlSeconds ?? 300, this.built?.digest);
    if (!read) return (this.built as NonNullable<typeof this.built>).pool;
    const previous = this.built;
    const pool = poolFromUpstream(read.config, this.options);
    await pool.load();
    this.built = { digest: read.digest, pool, config: read.config };
    await previous?.pool.close();
    return pool;
  }
}
