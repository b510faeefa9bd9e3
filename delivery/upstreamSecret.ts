import { createHash } from 'node:crypto';
import type { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { UpstreamSecretError } from './errors.ts';
import { parseUpstreamConfig, type UpstreamConfig } from './upstreamConfig.ts';

/** The `upstream` JSON of a Secrets Manager secret, with a digest of its text to tell a rotation. */
export interface ReadUpstreamSecret {
  digest: string;
  config: UpstreamConfig;
}

/**
 * Reads the secret through Powertools' cache (again once `ttlSeconds` have passed, so a rotated
 * secret is picked up without a restart) and validates it as an `upstream` block. Parsed only
 * when its text changed since `known` (then undefined is returned: keep what you built).
 * @throws UpstreamSecretError naming what is wrong with it
 */
export async function readUpstreamSecret(secrets: SecretsProvider, secretArn: string, ttlSeconds: number, known?: string): Promise<ReadUpstreamSecret | undefined> {
  const text = await secrets.get(secretArn, { maxAge: ttlSeconds }).catch((error: unknown) => {
    if (hasNoValue(error)) {
      throw new UpstreamSecretError(secretArn, ['the secret has no value yet (no AWSCURRENT version)']);
    }
    throw error;
  });
  if (typeof text !== 'string') {
    throw new UpstreamSecretError(secretArn, ['the secret has no SecretString']);
  }
  const digest = createHash('sha256').update(text).digest('hex');
  if (digest === known) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UpstreamSecretError(secretArn, ['the secret is not JSON']);
  }
  const parsed = parseUpstreamConfig(json, ['upstream']);
  if (!parsed.ok) {
    throw new UpstreamSecretError(secretArn, parsed.problems);
  }
  return { digest, config: parsed.config };
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
