import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { createUpstreamSubmitter } from './createUpstreamSubmitter.ts';
import type { SubmitMessage, SubmitResult, Submitter } from './smtp/submission.ts';
import { readUpstreamSecret } from './upstreamSecret.ts';
import { certificateNotAfter } from './token/certificateExpiry.ts';
import type { TokenHealth } from './token/tokenProvider.ts';
import type { Readable } from 'node:stream';

import { UpstreamSecretError } from './errors.ts';

export { UpstreamSecretError };

/**
 * A submitter whose upstream comes from Secrets Manager (the `upstream` JSON). The secret is read
 * through Powertools' cache and again once `ttlSeconds` have passed, so a rotated secret is
 * picked up without a restart; the SMTP pool is rebuilt only when the secret's content changed.
 */
interface CredentialHealth {
  certificateNotAfter?: number;
  tokens?: { health(): TokenHealth };
}

export class SecretUpstreamSubmitter implements Submitter {
  private current: { digest: string; submitter: Submitter; mailbox: string | undefined; credential: CredentialHealth } | undefined;
  private readonly secrets: SecretsProvider;

  constructor(
    private readonly secretArn: string,
    private readonly options: { ttlSeconds: number; secrets?: SecretsProvider; sharedBy?: number; create?: typeof createUpstreamSubmitter },
  ) {
    this.secrets = options.secrets ?? new SecretsProvider();
  }

  /** The mailbox of the current secret (for operator hints); loads the secret if needed. */
  async mailbox(): Promise<string | undefined> {
    return (await this.load()).mailbox;
  }

  async submit(message: SubmitMessage): Promise<SubmitResult> {
    return (await this.load()).submitter.submit(message);
  }

  /** The credential of the secret last read: its certificate's expiry and the token client's health; undefined before the first read. */
  credentialHealth(): { certificateNotAfter?: number; token?: TokenHealth } | undefined {
    const credential = this.current?.credential;
    if (!credential) return undefined;
    return { ...(credential.certificateNotAfter !== undefined ? { certificateNotAfter: credential.certificateNotAfter } : {}), ...(credential.tokens ? { token: credential.tokens.health() } : {}) };
  }

  async close(): Promise<void> {
    await this.current?.submitter.close();
    this.current = undefined;
  }

  private async load(): Promise<{ submitter: Submitter; mailbox: string | undefined }> {
    const read = await readUpstreamSecret(this.secrets, this.secretArn, this.options.ttlSeconds, this.current?.digest);
    if (!read) return this.current as NonNullable<typeof this.current>;
    const previous = this.current;
    const created = (this.options.create ?? createUpstreamSubmitter)(read.config, this.options.sharedBy ?? 1);
    this.current = { digest: read.digest, submitter: created.submitter, mailbox: created.mailbox, credential: { certificateNotAfter: certificateNotAfter(read.config), tokens: created.tokens } };
    await previous?.submitter.close();
    return this.current;
  }
}
