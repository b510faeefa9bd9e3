import { createHash } from 'node:crypto';
import type { WebhookConfig } from '../config/alertsSchema.ts';
import type { AlertNotice, AlertOrigin } from './alertNotice.ts';
import { webhookPayload } from './alertPayloads.ts';
import { maskWebhookUrl } from './maskWebhookUrl.ts';

/** A webhook's identity in the persisted state: a digest, so the file holds no webhook secret. */
export function webhookKey(webhook: WebhookConfig): string {
  return createHash('sha256').update(`${webhook.format} ${webhook.url}`).digest('hex').slice(0, 16);
}

/** The webhook did not take the notice; the message names the masked address only. */
export class WebhookFailedError extends Error {
  constructor(
    readonly target: string,
    reason: string,
  ) {
    super(`webhook ${target}: ${reason}`);
    this.name = 'WebhookFailedError';
  }
}

/** Posts one notice to one webhook with Node's fetch; any answer but 2xx, or none in time, is a failure. */
export async function postWebhook(webhook: WebhookConfig, notice: AlertNotice, origin: AlertOrigin, timeoutMs: number): Promise<void> {
  const target = maskWebhookUrl(webhook.url);
  let response: Response;
  try {
    response = await fetch(webhook.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'smarthost-alerts' },
      body: JSON.stringify(webhookPayload(webhook.format, notice, origin)),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
  } catch (error) {
    const cause = error instanceof Error && error.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : describeFetchError(error);
    throw new WebhookFailedError(target, cause);
  }
  // The body is read only to free the connection; a receiver's text may echo the URL, so it is not logged.
  await response.arrayBuffer().catch(() => undefined);
  if (!response.ok) throw new WebhookFailedError(target, `answered HTTP ${response.status}`);
}

/** undici puts the socket error (ECONNREFUSED...) in `cause`; its message may carry the URL, the code does not. */
function describeFetchError(error: unknown): string {
  const cause = error instanceof Error ? (error.cause as { code?: unknown } | undefined) : undefined;
  return typeof cause?.code === 'string' ? cause.code : 'the request failed';
}
