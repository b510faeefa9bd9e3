import { randomUUID } from 'node:crypto';
import { classifyReply } from '../../../delivery/classifyReply.ts';
import type { AgentConfig } from '../../config/agentConfigSchema.ts';
import type { UpstreamConfig } from '../../../delivery/upstreamConfig.ts';
import type { DoctorReport } from '../report.ts';
import type { SmtpSession } from '../smtpSession.ts';

/** The relay mailbox and every client's sendAs, each once (addresses compare case-insensitively). */
export function senderAddresses(config: AgentConfig, upstream: UpstreamConfig): string[] {
  const all = [upstream.auth.type === 'none' ? undefined : upstream.auth.user, ...config.clients.map((c) => c.sendAs)];
  const seen = new Map<string, string>();
  for (const address of all) if (address && !seen.has(address.toLowerCase())) seen.set(address.toLowerCase(), address);
  return [...seen.values()];
}

/**
 * MAIL FROM and RCPT for each sender, then RSET: nothing is sent. With `sendTestTo`, a small
 * message per sender instead, because Exchange Online checks SendAs on the message's From at
 * the end of DATA as well as at MAIL FROM.
 */
export async function checkSenders(report: DoctorReport, session: SmtpSession, config: AgentConfig, upstream: UpstreamConfig, sendTestTo: string | undefined): Promise<void> {
  const mailbox = upstream.auth.type === 'none' ? undefined : upstream.auth.user;
  const rcpt = sendTestTo ?? mailbox;
  for (const sender of senderAddresses(config, upstream)) {
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
    const done = await session.data(testMessage(sender, sendTestTo));
    if (done.code !== 250) {
      refused('DATA', done.text);
      continue;
    }
    report.ok(step, `${sender}: test message to ${sendTestTo} accepted (${done.text})`);
  }
}

function testMessage(from: string, to: string): string {
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
    '.',
    '',
  ].join('\r\n');
}
