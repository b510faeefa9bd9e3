import { randomUUID } from 'node:crypto';
import { classifyReply } from '../../../delivery/classifyReply.ts';
import type { AgentConfig } from '../../config/agentConfigSchema.ts';
import type { UpstreamConfig } from '../../../delivery/upstreamConfig.ts';
import type { PoolMemberConfig } from '../../../delivery/pool/poolMembers.ts';
import type { DoctorReport } from '../report.ts';
import type { SmtpSession } from '../smtpSession.ts';

/** The relay mailbox and every client's sendAs, each once (addresses compare case-insensitively). */
export function senderAddresses(config: AgentConfig, upstream: UpstreamConfig): string[] {
  return uniqueAddresses([upstream.auth.type === 'none' ? undefined : upstream.auth.user, ...config.clients.map((c) => c.sendAs)]);
}

/**
 * The addresses one mailbox of a pool sends as: itself, its own sendAs, and every client's sendAs
 * that no mailbox lists (the pool sends those through any mailbox); an address another mailbox
 * lists never goes through this one.
 */
export function poolMemberSenders(config: AgentConfig, members: readonly PoolMemberConfig[], member: PoolMemberConfig): string[] {
  const claimed = new Set(members.flatMap((m) => [...m.sendAs, ...(m.mailbox ? [m.mailbox.toLowerCase()] : [])]));
  const unclaimed = config.clients.map((c) => c.sendAs).filter((a): a is string => a !== undefined && !claimed.has(a.toLowerCase()));
  return uniqueAddresses([member.mailbox, ...member.sendAs, ...unclaimed]);
}

function uniqueAddresses(all: readonly (string | undefined)[]): string[] {
  const seen = new Map<string, string>();
  for (const address of all) if (address && !seen.has(address.toLowerCase())) seen.set(address.toLowerCase(), address);
  return [...seen.values()];
}

export async function checkSenders(report: DoctorReport, session: SmtpSession, senders: readonly string[], upstream: UpstreamConfig, sendTestTo: string | undefined): Promise<void> {
  const mailbox = upstream.auth.type === 'none' ? undefined : upstream.auth.user;
  const rcpt = sendTestTo ?? mailbox;
  for (const sender of senders) {
    const step = 'send-as';
    const refused = (command: string, text: string) => {
      const c = classifyReply({ response: text, command }, { sender, ...(mailbox ? { mailbox } : {}) });
      report.add({ step, status: 'fail', detail: `${sender}: ${command} refused: ${text}`, ...(c.operatorAction ? { fix: c.operatorAction } : {}) });
    };
    const from = await session.command(`MAIL FROM:<${sender}>`);
    if (from.code !== 250) {
      refused('MAIL FROM', from.text);
      await session.command('RSET');
      continue;
    }
    if (rcpt) {
      const to = await session.command(`RCPT TO:<${rcpt}>`);
      if (to.code !== 250 && to.code !== 251) {
        refused('RCPT TO', to.text);
        await session.command('RSET');
        continue;
      }
    }
    if (!sendTestTo) {
      await session.command('RSET');
      report.ok(step, `${sender}: MAIL FROM accepted (nothing sent; --send-test ADDRESS sends a test message, which also checks the SendAs grant on From)`);
      continue;
    }
    const go = await session.command('DATA');
    if (go.code !== 354) {
      refused('DATA', go.text);
      await session.command('RSET');
      continue;
    }
    const done = await session.data(`${testMessage(sender, sendTestTo)}.\r\n`);
    if (done.code !== 250) {
      refused('DATA', done.text);
      continue;
    }
    report.ok(step, `${sender}: test message to ${sendTestTo} accepted (${done.text})`);
  }
}

/** The test message's lines, CRLF-ended; SMTP adds the final dot, Graph takes it as it is. */
export function testMessage(from: string, to: string): string {
  const domain = from.split('@')[1] ?? 'localhost';
  return [
    `From: <${from}>`,
    `To: <${to}>`,
    `Subject: smarthost doctor: test message sent as ${from}`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <${randomUUID()}@${domain}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `smarthost doctor sent this message as ${from} to check that the relay may send as this address.`,
    '',
  ].join('\r\n');
}
