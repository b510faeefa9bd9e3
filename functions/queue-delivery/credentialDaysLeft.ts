import type { TokenHealth } from '../../delivery/token/tokenProvider.ts';

const DAY_MS = 86_400_000;

/**
 * Days until the upstream credential stops working, for the CredentialExpiresInDays metric: the
 * certificate's expiry, and, once a token renewal failed, the held token's (0 without one). A
 * client secret's expiry is known only to Entra, so a secret alone gives a value only once it fails.
 */
export function credentialDaysLeft(health: { certificateNotAfter?: number; token?: TokenHealth } | undefined, now: number): number | undefined {
  if (!health) return undefined;
  const candidates: number[] = [];
  if (health.certificateNotAfter !== undefined) candidates.push(health.certificateNotAfter);
  if (health.token?.renewalFailedAt !== undefined) candidates.push(health.token.expiresAt ?? now);
  if (candidates.length === 0) return undefined;
  return Math.max(0, Math.round(((Math.min(...candidates) - now) / DAY_MS) * 100) / 100);
}
