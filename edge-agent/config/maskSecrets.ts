import { maskUpstreamInPlace } from '../../delivery/upstreamConfig.ts';
import { maskPathInPlace } from '../../config-toolkit/secretMask.ts';
import type { AgentConfig } from './agentConfigSchema.ts';
import { maskWebhookUrl } from '../alerts/maskWebhookUrl.ts';

/** A deep copy of the effective configuration that is safe to print (`smarthost check-config`). */
export function maskSecrets(config: AgentConfig): unknown {
  const copy: unknown = structuredClone(config);
  if (typeof copy !== 'object' || copy === null) return copy;
  if ('clients' in copy && Array.isArray(copy.clients)) {
    for (const client of copy.clients) maskPathInPlace(client, ['auth', 'password']);
  }
  if ('status' in copy) {
    maskPathInPlace(copy.status, ['auth', 'token']);
    maskPathInPlace(copy.status, ['auth', 'password']);
  }
  if ('alerts' in copy && typeof copy.alerts === 'object' && copy.alerts !== null && 'webhooks' in copy.alerts && Array.isArray(copy.alerts.webhooks)) {
    for (const webhook of copy.alerts.webhooks as { url: string }[]) webhook.url = maskWebhookUrl(webhook.url);
  }
  if ('upstream' in copy) {
    maskUpstreamInPlace(copy.upstream);
  }
  return copy;
}
