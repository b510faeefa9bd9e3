import { createHash, X509Certificate } from 'node:crypto';
import { ConfidentialClientApplication, type Configuration } from '@azure/msal-node';
import { readPem } from '../pem.ts';
import { TokenUnavailableError } from '../errors.ts';
import { HttpsNetworkClient } from './httpsNetworkClient.ts';

export const EXCHANGE_ONLINE_SCOPE = 'https://outlook.office365.com/.default';
/** HVE refuses tokens close to expiry (`501 5.5.127 ... Token will expire soon`): renew at least 10 minutes ahead. */
export const RENEW_BEFORE_MS = 10 * 60_000;

export interface AccessTokenProvider {
  /** A valid bearer token for Exchange Online, from cache while it has time left. */
  getToken(): Promise<string>;
}

/** What the token client knows of its own health (the office box's alerts read it). */
export interface TokenHealth {
  /** When the token held now expires (ms); absent before the first one. */
  expiresAt?: number;
  /** The last request failed, after the last success: when, and the error (no secret in it). */
  renewalFailedAt?: number;
  error?: string;
}

export interface ClientCredentialsOptions {
  tenantId: string;
  clientId: string;
  clientSecret?: string;
  /** Paths or inline PEM. */
  certificate?: { key: string; cert: string };
  authority: string;
  /** Defaults to Exchange Online's scope in the global cloud. */
  scope?: string;
  /** Extra CA (path or PEM) trusted for the authority. */
  ca?: string;
}

/**
 * App-only OAuth2 (client credentials) through MSAL, which signs certificate assertions and
 * keeps the token cached, renewing it before it expires, so one token serves many messages.
 */
export class MsalTokenProvider implements AccessTokenProvider {
  private readonly app: ConfidentialClientApplication;
  private pending: Promise<string> | undefined;
  private cached: { token: string; renewAt: number } | undefined;
  private readonly scope: string;
  private failure: { at: number; error: string } | undefined;

  constructor(options: ClientCredentialsOptions) {
    this.scope = options.scope ?? EXCHANGE_ONLINE_SCOPE;
    const authorityBase = options.authority.replace(/\/+$/, '');
    const authority = `${authorityBase}/${options.tenantId}`;
    const auth: Configuration['auth'] = {
      clientId: options.clientId,
      authority,
      // Giving the metadata up front spares a discovery round trip at every start and lets
      // sovereign clouds and private authorities work without MSAL knowing them.
      knownAuthorities: [new URL(authorityBase).host],
      authorityMetadata: JSON.stringify(authorityMetadata(authority)),
    };
    if (options.certificate) {
      const certPem = readPem(options.certificate.cert);
      auth.clientCertificate = {
        thumbprintSha256: createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex'),
        privateKey: readPem(options.certificate.key),
        x5c: certPem,
      };
    } else {
      auth.clientSecret = options.clientSecret;
    }
    this.app = new ConfidentialClientApplication({
      auth,
      system: options.ca ? { networkClient: new HttpsNetworkClient(readPem(options.ca)) } : {},
    });
  }

  /**
   * Concurrent callers (one per pooled connection) share one request: MSAL's cache only helps
   * once a token is in it.
   */
  getToken(): Promise<string> {
    // Every message asks; MSAL's own cache lookup costs a few percent of the CPU per message.
    if (this.cached && Date.now() < this.cached.renewAt) {
      return Promise.resolve(this.cached.token);
    }
    this.pending ??= this.acquire().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  health(): TokenHealth {
    return {
      ...(this.cached ? { expiresAt: this.cached.renewAt + RENEW_BEFORE_MS } : {}),
      ...(this.failure ? { renewalFailedAt: this.failure.at, error: this.failure.error } : {}),
    };
  }

  private async acquire(): Promise<string> {
    let result;
    try {
      // Once a token was cached, MSAL would hand the same one back until its own 5-minute margin.
      result = await this.app.acquireTokenByClientCredential({ scopes: [this.scope], ...(this.cached ? { forceRefresh: true } : {}) });
    } catch (error) {
      const unavailable = TokenUnavailableError.from(error);
      this.failure ??= { at: Date.now(), error: unavailable.message };
      throw unavailable;
    }
    if (!result?.accessToken) {
      this.failure ??= { at: Date.now(), error: 'the token authority returned no access token' };
      throw new TokenUnavailableError('the token authority returned no access token', false);
    }
    this.failure = undefined;
    // Renewed ten minutes before it expires, past MSAL's own five-minute margin: forceRefresh makes MSAL fetch a new one.
    const expiresAt = result.expiresOn?.getTime() ?? 0;
    this.cached = { token: result.accessToken, renewAt: expiresAt - RENEW_BEFORE_MS };
    return result.accessToken;
  }
}

function authorityMetadata(authority: string): Record<string, string> {
  return {
    token_endpoint: `${authority}/oauth2/v2.0/token`,
    authorization_endpoint: `${authority}/oauth2/v2.0/authorize`,
    end_session_endpoint: `${authority}/oauth2/v2.0/logout`,
    issuer: `${authority}/v2.0`,
    jwks_uri: `${authority}/discovery/v2.0/keys`,
  };
}
