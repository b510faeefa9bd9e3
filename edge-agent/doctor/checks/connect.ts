import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { UpstreamConfig } from '../../../delivery/upstreamConfig.ts';
import type { DoctorReport } from '../report.ts';
import { SmtpSession } from '../smtpSession.ts';
import { tlsOptions, tlsFailure } from './tlsOptions.ts';

/** Resolves the upstream's name and opens the TCP (or, for `security: tls`, TLS) connection. */
export async function checkConnect(report: DoctorReport, upstream: UpstreamConfig, ca: string | undefined): Promise<SmtpSession> {
  const { host, port } = upstream;
  if (isIP(host)) {
    report.ok('dns', `${host} is an address; nothing to resolve`);
  } else {
    try {
      const addresses = await lookup(host, { all: true });
      report.ok('dns', `${host} resolves to ${addresses.map((a) => a.address).slice(0, 3).join(', ')}`);
    } catch (error) {
      report.fail('dns', `${host} does not resolve (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, `check upstream.host (Exchange Online: smtp.office365.com) and this machine's DNS server (resolvectl status)`);
    }
  }
  const firewallFix =
    `allow outbound TCP ${port} from this machine to ${host} in the office firewall (port 587 is often blocked to stop spam bots); ` +
    `test from a Windows PC with: Test-NetConnection ${host} -Port ${port}`;
  try {
    const session = await SmtpSession.open(host, port, upstream.timeouts.connect, upstream.security === 'tls' ? tlsOptions(upstream, ca) : undefined);
    report.ok('tcp', `connected to ${host}:${port}${upstream.security === 'tls' ? ' with TLS' : ''}`);
    return session;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (upstream.security === 'tls') tlsFailure(report, error, upstream);
    if (code === 'ECONNREFUSED') report.fail('tcp', `${host}:${port} refused the connection (nothing listens there, or a firewall rejects it)`, firewallFix);
    if (code === 'ETIMEDOUT') report.fail('tcp', `no answer from ${host}:${port} within ${upstream.timeouts.connect} ms: a firewall drops the connection`, firewallFix);
    report.fail('tcp', `cannot connect to ${host}:${port}: ${code || (error as Error).message}`, firewallFix);
  }
}
