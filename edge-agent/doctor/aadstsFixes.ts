import type { OAuth2AuthConfig } from '../../delivery/upstreamConfig.ts';

export interface AadstsDiagnosis {
  code: string;
  problem: string;
  fix: string;
}

/**
 * What each AADSTS code of an app-only token request means for this relay, with the app's
 * values filled in (codes: Microsoft Entra "error codes" reference and the Azure SDK's service
 * principal troubleshooting page).
 */
export function diagnoseAadsts(text: string, auth: OAuth2AuthConfig): AadstsDiagnosis | undefined {
  const code = /AADSTS(\d+)/.exec(text)?.[1];
  if (!code) return undefined;
  const app = `the app registration ${auth.clientId}`;
  const portal = 'Entra admin center > App registrations';
  const fixes: Record<string, [string, string]> = {
    '7000215': ['the client secret is wrong', `in ${portal} > ${auth.clientId} > Certificates & secrets, create a new client secret and put its Value (not its Secret ID) in upstream.auth.clientSecret`],
    '7000222': ['the client secret has expired', `in ${portal} > ${auth.clientId} > Certificates & secrets, create a new client secret, put its Value in upstream.auth.clientSecret and note its expiry date`],
    '700016': [`${app} was not found in the tenant ${auth.tenantId}`, `check upstream.auth.clientId (the Application (client) ID on the app's Overview page) and upstream.auth.tenantId (the Directory (tenant) ID on the same page)`],
    '90002': [`the tenant ${auth.tenantId} does not exist in this cloud`, 'check upstream.auth.tenantId (Directory (tenant) ID, or the tenant\'s onmicrosoft.com domain) and upstream.auth.authority (GCC High: https://login.microsoftonline.us)'],
    '900023': [`${auth.tenantId} is not a valid tenant id`, 'set upstream.auth.tenantId to the Directory (tenant) ID GUID or the tenant\'s onmicrosoft.com domain'],
    '65001': [`${app} has no admin consent`, `in ${portal} > ${auth.clientId} > API permissions, press "Grant admin consent" for Office 365 Exchange Online SMTP.SendAsApp`],
    '1002012': [`the scope ${auth.scope} is not valid for a client credential request`, 'set upstream.auth.scope to https://outlook.office365.com/.default (or remove it: that is the default)'],
    '500011': [`the resource of ${auth.scope} is not known in the tenant ${auth.tenantId}`, 'set upstream.auth.scope to https://outlook.office365.com/.default for the global cloud (https://outlook.office365.us/.default for GCC High)'],
    '700027': ['the certificate is not registered on the app', `upload upstream.auth.certificate.cert in ${portal} > ${auth.clientId} > Certificates & secrets > Certificates`],
    '7000274': ['the client assertion signature is not valid', 'check that upstream.auth.certificate.key belongs to upstream.auth.certificate.cert'],
    '700024': ['the client assertion is outside its valid time range', "this machine's clock is wrong: set up NTP (timedatectl set-ntp true)"],
    '7000112': [`${app} is disabled in the tenant`, 'Entra admin center > Enterprise applications > the app > Properties: set "Enabled for users to sign-in?" to Yes'],
  };
  const entry = fixes[code];
  if (!entry) {
    return { code: `AADSTS${code}`, problem: 'the identity platform refused the token request', fix: `look up AADSTS${code} at https://login.microsoftonline.com/error?code=${code}` };
  }
  return { code: `AADSTS${code}`, problem: entry[0], fix: entry[1] };
}
