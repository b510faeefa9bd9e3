import { X509Certificate } from 'node:crypto';
import { readPem } from '../pem.ts';
import type { UpstreamConfig } from '../upstreamConfig.ts';

/** When the upstream's certificate credential expires (ms), or undefined without one: the office box alerts and the function's metric read it. */
export function certificateNotAfter(upstream: UpstreamConfig | undefined): number | undefined {
  const auth = upstream?.auth;
  if (auth?.type !== 'oauth2' || !auth.certificate) return undefined;
  return Date.parse(new X509Certificate(readPem(auth.certificate.cert)).validTo);
}
