import { tokenProviderFor } from '../../../delivery/createUpstreamSubmitter.ts';
import type { OAuth2AuthConfig } from '../../../delivery/upstreamConfig.ts';
import { diagnoseAadsts } from '../aadstsFixes.ts';
import type { DoctorReport } from '../report.ts';
import { audienceOfScope, decodeClaims, type TokenClaims } from '../tokenClaims.ts';

export const SEND_AS_APP_ROLE = 'SMTP.SendAsApp';
/** Exchange Online's first-party app id, which some tokens carry as `aud` instead of the URL. */
const EXCHANGE_APP_ID = '00000002-0000-0ff1-ce00-000000000000';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface TokenResult {
  token: string;
  claims: TokenClaims;
}

/**
 * Requests a token through the same MSAL client delivery uses, prints what it grants and checks
 * its tenant; each route checks the audience and role it needs.
 */
export async function requestToken(report: DoctorReport, auth: OAuth2AuthConfig, ca: string | undefined): Promise<TokenResult> {
  const provider = tokenProviderFor(auth, ca);
  let token: string;
  try {
    token = await provider.getToken();
  } catch (error) {
    const text = (error as Error).message;
    const known = diagnoseAadsts(text, auth);
    if (known) report.fail('token', `${known.code}: ${known.problem}`, known.fix);
    report.fail('token', `no token from ${auth.authority}: ${text.slice(0, 200)}`, `check that this machine reaches ${new URL(auth.authority).host} on port 443 (proxy, firewall) and upstream.ca for a TLS-inspecting proxy`);
  }
  const claims = decodeClaims(token) ?? {};
  const roles = claims.roles ?? [];
  report.ok('token', `issued for app ${claims.appid ?? '?'}: tid=${claims.tid ?? '?'} aud=${claims.aud ?? '?'} roles=[${roles.join(', ')}] oid=${claims.oid ?? '?'}`);
  if (GUID.test(auth.tenantId) && claims.tid && claims.tid.toLowerCase() !== auth.tenantId.toLowerCase()) {
    report.fail('claims', `the token is for tenant ${claims.tid}, not upstream.auth.tenantId ${auth.tenantId}`, 'set upstream.auth.tenantId to the tenant that holds the relay mailbox');
  }
  return { token, claims };
}

/** The SMTP route's token: Exchange Online's audience and the SMTP.SendAsApp role. */
export async function checkToken(report: DoctorReport, auth: OAuth2AuthConfig, ca: string | undefined): Promise<TokenResult> {
  const result = await requestToken(report, auth, ca);
  const { claims } = result;
  const roles = claims.roles ?? [];
  const audience = audienceOfScope(auth.scope);
  if (claims.aud && claims.aud !== audience && claims.aud !== EXCHANGE_APP_ID) {
    report.fail('claims', `the token's audience is ${claims.aud}, not Exchange Online (${audience})`, 'set upstream.auth.scope to https://outlook.office365.com/.default');
  }
  if (!roles.includes(SEND_AS_APP_ROLE)) {
    report.fail(
      'claims',
      `the token has no ${SEND_AS_APP_ROLE} role: the app lacks the permission or its admin consent`,
      `Entra admin center > App registrations > ${auth.clientId} > API permissions > Add a permission > APIs my organization uses > Office 365 Exchange Online > Application permissions > SMTP.SendAsApp, then "Grant admin consent"`,
    );
  }
  report.ok('claims', `tenant, audience and the ${SEND_AS_APP_ROLE} role are right`);
  return result;
}
