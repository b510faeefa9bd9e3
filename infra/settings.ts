import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { durationOrOffSchema } from '../config-toolkit/fieldSchemas.ts';
import type { AgentTrust } from './constructs/AgentAccess.ts';

/** Context keys the app reads (`npx cdk deploy -c alarmEmail=you@contoso.com`, or cdk.json). */
export const CONTEXT_KEYS = {
  stackName: 'stackName',
  alarmEmail: 'alarmEmail',
  failureNoticeTo: 'failureNoticeTo',
  delayedNoticeAfter: 'delayedNoticeAfter',
  customerManagedKey: 'customerManagedKey',
  rolesAnywhereTrustAnchorArn: 'rolesAnywhereTrustAnchorArn',
  agentCaCertificateFile: 'agentCaCertificateFile',
  agentCertificateCn: 'agentCertificateCn',
  agentPrincipalArn: 'agentPrincipalArn',
} as const;

/** Used when no credentials tell the CLI the account: `cdk synth` then still works offline. */
export const FALLBACK_ACCOUNT = '123456789012';
/** Used when neither the CLI nor AWS_REGION / AWS_DEFAULT_REGION give a region. */
export const FALLBACK_REGION = 'us-east-1';

export interface SmarthostSettings {
  readonly stackName: string;
  readonly account: string;
  readonly region: string;
  readonly alarmEmail?: string;
  readonly failureNoticeTo?: string;
  readonly delayedNoticeAfter?: string;
  readonly customerManagedKey: boolean;
  readonly agentTrust: AgentTrust;
}

/** The context was refused; `problems` names each key (all of them, not just the first). */
export class SettingsError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid smarthost context (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  ${problems.join('\n  ')}`);
    this.name = 'SettingsError';
  }
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const STACK_NAME = /^[A-Za-z][A-Za-z0-9-]{0,127}$/;
const TRUST_ANCHOR_ARN = /^arn:aws[a-z-]*:rolesanywhere:[a-z0-9-]+:\d{12}:trust-anchor\/[0-9a-f-]{36}$/;
const IAM_PRINCIPAL_ARN = /^arn:aws[a-z-]*:iam::\d{12}:(user|role)\/[\w+=,.@/-]+$/;

export interface ReadSettingsOptions {
  /** Context lookup, e.g. `(key) => app.node.tryGetContext(key)`. */
  readonly context: (key: string) => unknown;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Relative certificate paths resolve against this. @default process.cwd() */
  readonly baseDir?: string;
}

/**
 * Reads and checks the app's context. An empty string counts as not given (cdk.json lists every
 * key with '' so they are discoverable). Throws `SettingsError` listing every problem.
 */
export function readSettings(options: ReadSettingsOptions): SmarthostSettings {
  const env = options.env ?? process.env;
  const problems: string[] = [];

  const text = (key: string, pattern?: RegExp, expected?: string): string | undefined => {
    const value = options.context(key);
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string') {
      problems.push(`${key}: expected text, got ${typeof value}`);
      return undefined;
    }
    const trimmed = value.trim();
    if (pattern && !pattern.test(trimmed)) {
      problems.push(`${key}: expected ${expected}, got '${trimmed.length > 80 ? `${trimmed.slice(0, 77)}...` : trimmed}'`);
      return undefined;
    }
    return trimmed;
  };
  const flag = (key: string): boolean => {
    const value = options.context(key);
    if (value === undefined || value === null || value === '' || value === false || value === 'false') return false;
    if (value === true || value === 'true') return true;
    problems.push(`${key}: expected true or false, got '${String(value)}'`);
    return false;
  };

  const stackName = text(CONTEXT_KEYS.stackName, STACK_NAME, 'a CloudFormation stack name (letters, digits, hyphens)') ?? 'Smarthost';
  const alarmEmail = text(CONTEXT_KEYS.alarmEmail, EMAIL, 'an email address');
  const failureNoticeTo = text(CONTEXT_KEYS.failureNoticeTo, EMAIL, 'an email address');
  const delayedNoticeAfter = text(CONTEXT_KEYS.delayedNoticeAfter);
  // Checked here with the function's own parser, so a typo fails the deploy, not the cold start.
  const delayParsed = delayedNoticeAfter === undefined ? undefined : durationOrOffSchema.safeParse(delayedNoticeAfter);
  if (delayParsed && !delayParsed.success) problems.push(`${CONTEXT_KEYS.delayedNoticeAfter}: ${delayParsed.error.issues[0]?.message ?? 'invalid'}`);
  const customerManagedKey = flag(CONTEXT_KEYS.customerManagedKey);
  const trustAnchorArn = text(CONTEXT_KEYS.rolesAnywhereTrustAnchorArn, TRUST_ANCHOR_ARN, 'a Roles Anywhere trust anchor ARN');
  const caFile = text(CONTEXT_KEYS.agentCaCertificateFile);
  const commonName = text(CONTEXT_KEYS.agentCertificateCn);
  const principalArn = text(CONTEXT_KEYS.agentPrincipalArn, IAM_PRINCIPAL_ARN, 'an IAM user or role ARN');

  let caPem: string | undefined;
  if (caFile !== undefined) {
    const path = resolve(options.baseDir ?? process.cwd(), caFile);
    try {
      caPem = readFileSync(path, 'utf8');
      if (!caPem.includes('-----BEGIN CERTIFICATE-----')) {
        problems.push(`${CONTEXT_KEYS.agentCaCertificateFile}: ${path} holds no PEM certificate`);
        caPem = undefined;
      }
    } catch (error) {
      problems.push(`${CONTEXT_KEYS.agentCaCertificateFile}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
  }
  const rolesAnywhere = trustAnchorArn !== undefined || caFile !== undefined;
  if (trustAnchorArn !== undefined && caFile !== undefined) {
    problems.push(`${CONTEXT_KEYS.rolesAnywhereTrustAnchorArn}: give it or ${CONTEXT_KEYS.agentCaCertificateFile}, not both`);
  }
  if (principalArn !== undefined && rolesAnywhere) {
    problems.push(`${CONTEXT_KEYS.agentPrincipalArn}: cannot be combined with Roles Anywhere (the role then trusts Roles Anywhere only)`);
  }
  if (commonName !== undefined && !rolesAnywhere) {
    problems.push(`${CONTEXT_KEYS.agentCertificateCn}: needs ${CONTEXT_KEYS.rolesAnywhereTrustAnchorArn} or ${CONTEXT_KEYS.agentCaCertificateFile}`);
  }
  if (problems.length > 0) throw new SettingsError(problems);

  return {
    stackName,
    account: env.CDK_DEFAULT_ACCOUNT || FALLBACK_ACCOUNT,
    region: env.CDK_DEFAULT_REGION || env.AWS_REGION || env.AWS_DEFAULT_REGION || FALLBACK_REGION,
    alarmEmail,
    failureNoticeTo,
    ...(delayedNoticeAfter !== undefined ? { delayedNoticeAfter } : {}),
    customerManagedKey,
    agentTrust: {
      rolesAnywhereTrustAnchorArn: trustAnchorArn,
      rolesAnywhereCaCertificatePem: caPem,
      certificateCommonName: commonName,
      principalArn,
    },
  };
}
