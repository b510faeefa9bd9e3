import { CLOUD_PRESETS } from './cloudPresets.ts';
import { readPem } from './pem.ts';
import { GraphSubmitter } from './graph/graphSubmitter.ts';
import type { Submitter } from './smtp/submission.ts';
import { SmtpSubmitter } from './smtp/smtpSubmitter.ts';
import { MsalTokenProvider } from './token/tokenProvider.ts';
import type { OAuth2AuthConfig, UpstreamConfig } from './upstreamConfig.ts';

/**
 * Builds the SMTP submitter for an `upstream` block; the one place config meets the client.
 * `sharedBy`: how many processes submit for the same mailbox at once (Lambda instances), so each
 * takes its part of the mailbox's connection and per-minute limits. `callerLimitsRate`: the caller
 * starts submissions no faster than `upstream.rateLimit.perMinute` itself (the spool delivery
 * loop), so the submitter does not count them a second time.
 */
/** The token client for an upstream's oauth2 block: delivery and `smarthost doctor` ask the same one. */
export function tokenProviderFor(auth: OAuth2AuthConfig, ca: string | undefined): MsalTokenProvider {
  return new MsalTokenProvider({
    tenantId: auth.tenantId,
    clientId: auth.clientId,
    clientSecret: auth.clientSecret,
    certificate: auth.certificate,
    authority: auth.authority,
    scope: auth.scope,
    ca,
  });
}

export function createUpstreamSubmitter(
  upstream: UpstreamConfig,
  sharedBy = 1,
  callerLimitsRate = false,
): { submitter: Submitter; mailbox: string | undefined; tokens?: MsalTokenProvider } {
  const ca = upstream.ca ? readPem(upstream.ca) : undefined;
  const auth = upstream.auth;
  const tokens = auth.type === 'oauth2' ? tokenProviderFor(auth, ca) : undefined;
  if (upstream.route === 'graph' && auth.type === 'oauth2' && tokens) {
    const submitter = new GraphSubmitter({ baseUrl: upstream.graph?.baseUrl ?? CLOUD_PRESETS.worldwide.graphBaseUrl, mailbox: auth.user, tokens, saveToSentItems: upstream.graph?.saveToSentItems ?? true, timeoutMs: upstream.timeouts.socket, appId: auth.clientId });
    return { submitter, mailbox: auth.user, tokens };
  }
  const submitter = new SmtpSubmitter({
    host: upstream.host,
    port: upstream.port,
    security: upstream.security,
    ca,
    name: upstream.name,
    connections: Math.max(1, Math.floor(upstream.rateLimit.connections / sharedBy)),
    ...(callerLimitsRate ? {} : { perMinute: Math.max(1, Math.floor(upstream.rateLimit.perMinute / sharedBy)) }),
    connectTimeoutMs: upstream.timeouts.connect,
    socketTimeoutMs: upstream.timeouts.socket,
    auth:
      auth.type === 'oauth2' && tokens
        ? {
            type: 'oauth2',
            user: auth.user,
            tokens,
          }
        : auth.type === 'basic'
          ? { type: 'basic', user: auth.user, password: auth.password }
          : { type: 'none' },
  });
  return { submitter, mailbox: auth.type === 'none' ? undefined : auth.user, ...(tokens ? { tokens } : {}) };
}
