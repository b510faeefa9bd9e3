import { createHash } from 'node:crypto';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { createUpstreamSubmitter } from './createUpstreamSubmitter.ts';
import type { SubmitMessage, SubmitResult, Submitter } from './smtp/submission.ts';
import { parseUpstreamConfig } from './upstreamConfig.ts';
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
    const text = await this.secrets.get(this.secretArn, { maxAge: this.options.ttlSeconds }).catch((error: unknown) => {
      if (hasNoValue(error)) {
        throw new UpstreamSecretError(this.secretArn, ['the secret has no value yet (no AWSCURRENT version)']);
      }
      throw error;
    });
    if (typeof text !== 'string') {
      throw new UpstreamSecretError(this.secretArn, ['the secret has no SecretString']);
    }
    const digest = createHash('sha256').update(text).digest('hex');
    if (this.current?.digest === digest) {
      return this.current;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new UpstreamSecretError(this.secretArn, ['the secret is not JSON']);
    }
    const parsed = parseUpstreamConfig(json, ['upstream']);
    if (!parsed.ok) {
      throw new UpstreamSecretError(this.secretArn, parsed.problems);
    }
    const previous = this.current;
    const created = (this.options.create ?? createUpstreamSubmitter)(parsed.config, this.options.sharedBy ?? 1);
    this.current = { digest, submitter: created.submitter, mailbox: created.mailbox, credential: { certificateNotAfter: certificateNotAfter(parsed.config), tokens: created.tokens } };
    await previous?.submitter.close();
    return this.current;
  }
}

/**
 * A secret created without a value (the stack makes it empty for the operator to fill): AWS
 * answers ResourceNotFoundException for the AWSCURRENT label, which Powertools wraps.
 */
function hasNoValue(error: unknown): boolean {
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if (cause.name === 'ResourceNotFoundException' && /secret value for staging label: AWSCURRENT/.test(cause.message)) return true;
  }
  return false;
}
