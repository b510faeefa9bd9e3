/**
 * Which kind of source of the SDK's default chain gave the credentials, from the feature marks
 * the SDK puts on what it resolves (`$source`), never from the keys themselves.
 */
const SOURCES: [feature: string, description: string][] = [
  ['CREDENTIALS_PROFILE_PROCESS', 'credential_process of profile {profile} (e.g. aws_signing_helper for IAM Roles Anywhere)'],
  ['CREDENTIALS_PROFILE_SOURCE_PROFILE', 'role_arn with source_profile in profile {profile} (an assumed role)'],
  ['CREDENTIALS_PROFILE_SSO', 'IAM Identity Center (SSO) profile {profile}'],
  ['CREDENTIALS_PROFILE_SSO_LEGACY', 'IAM Identity Center (SSO) profile {profile}'],
  ['CREDENTIALS_PROFILE_STS_WEB_ID_TOKEN', 'web identity token of profile {profile}'],
  ['CREDENTIALS_PROFILE_LOGIN', 'aws login session of profile {profile}'],
  ['CREDENTIALS_PROFILE_NAMED_PROVIDER', 'credential_source of profile {profile}'],
  ['CREDENTIALS_PROFILE', 'access keys in profile {profile} (shared config/credentials file)'],
  ['CREDENTIALS_ENV_VARS_STS_WEB_ID_TOKEN', 'web identity token (AWS_WEB_IDENTITY_TOKEN_FILE)'],
  ['CREDENTIALS_ENV_VARS', 'environment variables (AWS_ACCESS_KEY_ID)'],
  ['CREDENTIALS_PROCESS', 'credential_process'],
  ['CREDENTIALS_SSO', 'IAM Identity Center (SSO)'],
  ['CREDENTIALS_SSO_LEGACY', 'IAM Identity Center (SSO)'],
  ['CREDENTIALS_HTTP', 'container credentials endpoint (ECS / EKS Pod Identity)'],
  ['CREDENTIALS_IMDS', 'EC2 instance metadata (instance profile)'],
  ['CREDENTIALS_CODE', 'credentials given in code'],
];

/** What the SDK resolves credentials to, the parts looked at here. */
export interface ResolvedCredentials {
  sessionToken?: string;
  expiration?: Date;
  $source?: Record<string, unknown>;
}

export function describeCredentialSource(credentials: ResolvedCredentials, profile: string | undefined): string {
  const marks = credentials.$source ?? {};
  const found = SOURCES.find(([feature]) => feature in marks);
  const source = (found?.[1] ?? 'a source of the default chain').replace('{profile}', `'${profile ?? 'default'}'`);
  const lifetime = credentials.expiration ? `, temporary until ${credentials.expiration.toISOString()}` : credentials.sessionToken ? ', temporary' : ', long-term keys';
  return `${source}${lifetime}`;
}
