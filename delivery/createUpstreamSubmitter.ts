import { CLOUD_PRESETS } from './cloudPresets.ts';
import { readPem } from './pem.ts';
import { graphMailboxLimiter } from './graph/graphLimits.ts';
import { GraphSubmitter } from './graph/graphSubmitter.ts';
import type { Submitter } from './smtp/submission.ts';
import { SmtpSubmitter } from './smtp/smtpSubmitter.ts';
import { MsalTokenProvider } from './token/tokenProvider.ts';
import type { OAuth2AuthConfig, UpstreamConfig } from './upstreamConfig.ts';

/** The token client for an upstream's oauth2 block: delivery and `smarthost doctor` ask the same one. */
export function tokenProviderFor(auth: OAuth2AuthConfig, ca: string | undefined, scope = auth.scope): MsalTokenProvider {
  return new MsalTokenProvider({
    tenantId: auth.tenantId,
    clientId: auth.clientId,
    clientSecret: auth.clientSecret,
    certificate: auth.certificate,
    authority: auth.authority,
    scope,
    ca,
  });
}

/**
 * Builds the submitter for an `upstream` block; the one place config meets the client.
 * `sharedBy`: how many processes submit for the same mailbox at once (Lambda instances), so each
 * takes its part of the mailbox's connection and per-minute limits (and of Graph's). `callerLimitsRate`: the caller
 * starts submissions no faster than `upstream.rateLimit.perMinute` itself (the spool delivery
 * loop), so the submitter does not count them a second time.
 */
export function createUpstreamSubmitter(
  upstream: UpstreamConfig,
  sharedBy = 1,
  callerLimitsRate = false,
): { submitter: Submitter; mailbox: string | undefined; tokens?: MsalTokenProvider } {
  const ca = upstream.ca ? readPem(upstream.ca) : undefined;
  const auth = upstream.auth;
  // One token client per submitter, so alerts and metrics see the health of the one that sends.
  const tokens = auth.type === 'oauth2' ? tokenProviderFor(auth, ca) : undefined;
  const perMinute = callerLimitsRate ? undefined : Math.max(1, Math.floor(upstream.rateLimit.perMinute / sharedBy));
  if (upstream.route === 'graph' && auth.type === 'oauth2' && tokens) {
    const baseUrl = upstream.graph?.baseUrl ?? CLOUD_PRESETS.worldwide.graphBaseUrl;
    // Where the caller does not schedule (the SQS poller, the Lambda), the limiter waits on the
    // mailbox's SendRate as the SMTP submitter does.
    const limiter = graphMailboxLimiter({ baseUrl, appId: auth.clientId, mailbox: auth.user }, { perMinute, sharedBy });
    const largeMessages =
      upstream.graph?.largeMessages === 'smtp'
        ? smtpSubmitter(upstream, ca, sharedBy, perMinute, { type: 'oauth2', user: auth.user, tokens: tokenProviderFor(auth, ca, upstream.graph.smtpScope) })
        : undefined;
    const submitter = new GraphSubmitter({
      baseUrl,
      mailbox: auth.user,
      tokens,
      saveToSentItems: upstream.graph?.saveToSentItems ?? true,
      timeoutMs: upstream.timeouts.socket,
      appId: auth.clientId,
      limiter,
      ...(largeMessages ? { largeMessages } : {}),
    });
    return { submitter, mailbox: auth.user, tokens };
  }
  const submitter = smtpSubmitter(
    upstream,
    ca,
    sharedBy,
    perMinute,
    auth.type === 'oauth2' && tokens
      ? { type: 'oauth2', user: auth.user, tokens }
      : auth.type === 'basic'
        ? { type: 'basic', user: auth.user, password: auth.password }
        : { type: 'none' },
  );
  return { submitter, mailbox: auth.type === 'none' ? undefined : auth.user, ...(tokens ? { tokens } : {}) };
}

function smtpSubmitter(upstream: UpstreamConfig, ca: string | undefined, sharedBy: number, perMinute: number | undefined, auth: ConstructorParameters<typeof SmtpSubmitter>[0]['auth']): SmtpSubmitter {
  return new SmtpSubmitter({
    host: upstream.host,
    port: upstream.port,
    security: upstream.security,
    ca,
    name: upstream.name,
    connections: Math.max(1, Math.floor(upstream.rateLimit.connections / sharedBy)),
    ...(perMinute === undefined ? {} : { perMinute }),
    connectTimeoutMs: upstream.timeouts.connect,
    socketTimeoutMs: upstream.timeouts.socket,
    auth,
  });
}
