import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { UpstreamConfig } from '../../../delivery/upstreamConfig.ts';
import type { DoctorReport } from '../report.ts';

/** What delivery requires too: TLS 1.2 or newer and a certificate valid for upstream.host. */
export const MIN_TLS_VERSION = 'TLSv1.2';

export function tlsOptions(upstream: UpstreamConfig, ca: string | undefined): ConnectionOptions {
  return {
    minVersion: MIN_TLS_VERSION,
    rejectUnauthorized: true,
    ...(isIP(upstream.host) ? {} : { servername: upstream.host }),
    // Node checks the certificate against `host`; with a socket given it must be passed.
    host: upstream.host,
    ...(ca ? { ca } : {}),
  };
}

const VERSION_CODES = /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|WRONG_VERSION_NUMBER|INVALID_PROTOCOL_VERSION|NO_PROTOCOLS_AVAILABLE/;

/** Names a failed handshake's cause; always throws. */
export function tlsFailure(report: DoctorReport, error: unknown, upstream: UpstreamConfig): never {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const message = (error as Error).message;
  if (VERSION_CODES.test(code) || /protocol version|unsupported protocol|wrong version number/i.test(message)) {
    report.fail(
      'tls',
      `${upstream.host} offers no TLS ${MIN_TLS_VERSION.slice(4)} or newer (${code || message})`,
      'Exchange Online speaks TLS 1.2 and 1.3: a TLS-inspecting proxy or firewall in between downgrades the connection; update it or exempt this traffic, or check upstream.host',
    );
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO|ALTNAME|HOSTNAME/i.test(code) || /certificate/i.test(message)) {
    report.fail(
      'tls',
      `the certificate of ${upstream.host} is not valid for it (${code}: ${message.slice(0, 160)})`,
      `check that upstream.host is the name in the server's certificate (smtp.office365.com); behind a TLS-inspecting proxy, give its CA in upstream.ca; check this machine's clock`,
    );
  }
  report.fail('tls', `the TLS handshake with ${upstream.host} failed: ${code || message}`, 'look for a proxy or firewall in between that intercepts TLS');
}
