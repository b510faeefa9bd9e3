import { classifyReply } from '../../../delivery/classifyReply.ts';
import type { UpstreamConfig } from '../../../delivery/upstreamConfig.ts';
import type { DoctorReport } from '../report.ts';
import type { SmtpReplyLines, SmtpSession } from '../smtpSession.ts';
import { MIN_TLS_VERSION, tlsFailure, tlsOptions } from './tlsOptions.ts';

const DOCTOR_EHLO_NAME = 'smarthost-doctor';

const STARTTLS_FIX =
  "a firewall's SMTP inspection (Cisco ESMTP inspection / 'fixup smtp', SonicWall, FortiGate and the like) strips or refuses STARTTLS: " +
  'switch SMTP inspection off for traffic from this machine to the upstream, or connect from a network without it';

/** Greeting, EHLO, STARTTLS and the TLS handshake. Returns the EHLO capabilities inside TLS. */
export async function checkSmtpAndTls(report: DoctorReport, session: SmtpSession, upstream: UpstreamConfig, ca: string | undefined): Promise<string[]> {
  const name = upstream.name ?? DOCTOR_EHLO_NAME;
  const greeting = await session.read();
  if (greeting.code !== 220) report.fail('greeting', `the server greeted with ${greeting.text}`, 'check upstream.host and upstream.port: this is not an SMTP submission server that takes mail');
  let ehlo = await expect(report, 'ehlo', session, `EHLO ${name}`, 250);
  report.ok('ehlo', `${greeting.lines[0]?.split(' ')[0] ?? upstream.host} answered EHLO`);
  if (upstream.security === 'starttls') {
    if (!ehlo.lines.some((l) => /^STARTTLS\b/i.test(l))) {
      report.fail('starttls', `${upstream.host} did not offer STARTTLS in its EHLO reply (Exchange Online always does)`, STARTTLS_FIX);
    }
    const answer = await session.command('STARTTLS');
    if (answer.code !== 220) report.fail('starttls', `${upstream.host} answered STARTTLS with ${answer.text}`, STARTTLS_FIX);
    report.ok('starttls', 'offered and accepted');
    try {
      await session.upgrade(tlsOptions(upstream, ca));
    } catch (error) {
      tlsFailure(report, error, upstream);
    }
    ehlo = await expect(report, 'ehlo', session, `EHLO ${name}`, 250);
  }
  const tls = session.tlsSocket;
  if (tls) {
    const protocol = tls.getProtocol() ?? '?';
    const cert = tls.getPeerCertificate();
    report.ok('tls', `${protocol} (${MIN_TLS_VERSION} or newer required), certificate for ${cert.subject?.CN ?? upstream.host} valid until ${new Date(cert.valid_to).toISOString().slice(0, 10)}`);
  } else {
    report.warn('tls', 'upstream.security is none: mail goes in clear text', 'set upstream.security to starttls with upstream.port 587');
  }
  return ehlo.lines.slice(1);
}

async function expect(report: DoctorReport, step: string, session: SmtpSession, line: string, code: number): Promise<SmtpReplyLines> {
  const reply = await session.command(line);
  if (reply.code !== code) {
    const c = classifyReply({ response: reply.text, responseCode: reply.code, command: line.split(' ')[0] });
    report.fail(step, `${line.split(' ')[0]} answered ${reply.text}`, c.operatorAction);
  }
  return reply;
}
