import { startFakeExchangeOnline, type FakeExchangeOnline, type FakeExchangeOnlineOptions } from '../fakes/fakeExchangeOnline.ts';
import { startFakeTokenEndpoint, type FakeTokenEndpoint } from '../fakes/fakeTokenEndpoint.ts';
import { caPem, clientCert } from '../fakes/tlsFixtures.ts';
import type { UpstreamConfigInput } from '../../delivery/upstreamConfig.ts';

export const TENANT_ID = '11111111-2222-3333-4444-555555555555';
export const CLIENT_ID = 'aaaaaaaa-0000-0000-0000-000000000001';
export const CLIENT_SECRET = 'client-secret-value-that-must-never-be-logged';
export const RELAY_MAILBOX = 'relay@contoso.com';
export const BASIC_PASSWORD = 'basic-password-that-must-never-be-logged';

export interface ExchangeOnlineRig {
  exo: FakeExchangeOnline;
  tokens: FakeTokenEndpoint;
  /** An `upstream` block pointing at the fakes with app-only OAuth2. */
  upstream(overrides?: Partial<UpstreamConfigInput>): UpstreamConfigInput;
  close(): Promise<void>;
}

/** Fake Exchange Online and its identity platform, wired together, on loopback. */
export async function startExchangeOnlineRig(options: FakeExchangeOnlineOptions = {}): Promise<ExchangeOnlineRig> {
  const tokens = await startFakeTokenEndpoint({ tenantId: TENANT_ID, clients: { [CLIENT_ID]: { secret: CLIENT_SECRET, certPem: clientCert } } });
  const exo = await startFakeExchangeOnline({
    tokenVerifier: tokens,
    internalDomains: ['contoso.com'],
    mailboxes: [RELAY_MAILBOX, 'you@contoso.com', 'ops@contoso.com', 'faxservice@contoso.com'],
    basicUsers: { [RELAY_MAILBOX]: BASIC_PASSWORD },
    // Like servers that refuse a 1.5 KB AUTH line: the token must go on the line after 334.
    maxAuthCommandLength: 512,
    // The relay mailbox holds SendAs grants for these device addresses, as an admin would set up.
    sendAs: { [RELAY_MAILBOX]: ['FaxService@contoso.com', 'scanner@contoso.com', 'nas@contoso.com'] },
    ...options,
  });
  return {
    exo,
    tokens,
    upstream(overrides = {}) {
      return {
        host: '127.0.0.1',
        port: exo.port,
        security: 'starttls',
        ca: caPem,
        auth: { type: 'oauth2', tenantId: TENANT_ID, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, authority: tokens.url, user: RELAY_MAILBOX },
        rateLimit: { perMinute: 1000, connections: 3 },
        ...overrides,
      };
    },
    async close() {
      await exo.close();
      await tokens.close();
    },
  };
}
