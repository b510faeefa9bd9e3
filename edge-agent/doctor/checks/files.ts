import { X509Certificate } from 'node:crypto';
import { checkReferencedFiles } from '../../config/checkFiles.ts';
import { ConfigError } from '../../../config-toolkit/configError.ts';
import type { AgentConfig } from '../../config/agentConfigSchema.ts';
import type { OAuth2AuthConfig } from '../../../delivery/upstreamConfig.ts';
import { readPem } from '../../../delivery/pem.ts';
import type { DoctorReport } from '../report.ts';

/** A certificate credential is renewed in the portal before Entra stops taking it. */
export const CERTIFICATE_WARNING_DAYS = 30;
const DAY_MS = 86_400_000;

export function checkFiles(report: DoctorReport, config: AgentConfig): void {
  try {
    checkReferencedFiles(config);
  } catch (error) {
    if (error instanceof ConfigError) report.fail('files', error.message.replace(/\s*\n\s*/g, '; '), 'make each file named readable by the user the agent runs as');
    throw error;
  }
  report.ok('files', 'every file the configuration names is readable');
}

export function checkCertificateCredential(report: DoctorReport, auth: OAuth2AuthConfig, now: number): void {
  if (!auth.certificate) return;
  const cert = new X509Certificate(readPem(auth.certificate.cert));
  const validTo = new Date(cert.validTo);
  const daysLeft = Math.floor((validTo.getTime() - now) / DAY_MS);
  const renew = `create a new certificate, upload it in Entra admin center > App registrations > ${auth.clientId} > Certificates & secrets, and point upstream.auth.certificate at it`;
  if (daysLeft < 0) report.fail('cert-cred', `the certificate credential expired on ${validTo.toISOString().slice(0, 10)}`, renew);
  if (daysLeft < CERTIFICATE_WARNING_DAYS) report.warn('cert-cred', `the certificate credential expires on ${validTo.toISOString().slice(0, 10)} (${daysLeft} days left)`, renew);
  else report.ok('cert-cred', `the certificate credential is valid until ${validTo.toISOString().slice(0, 10)} (thumbprint ${cert.fingerprint256.replaceAll(':', '').slice(0, 16)}...)`);
}
