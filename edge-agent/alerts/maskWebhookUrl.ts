import { SECRET_MASK } from '../../config-toolkit/secretMask.ts';

/**
 * An incoming webhook's address with its path and query masked: Teams, Slack and most others put
 * the credential there (…/webhookb2/GUID/IncomingWebhook/KEY, /services/T…/B…/SECRET).
 */
export function maskWebhookUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}/${SECRET_MASK}`;
  } catch {
    return SECRET_MASK;
  }
}
