import { createHash } from 'node:crypto';
import { deviceClient } from '../../testbed/helpers/agentHarness.ts';

/** One message a device sent, and what the agent answered. */
export interface DeviceSend {
  subject: string;
  sha256: string;
  /** The reply line to the failing command, or the 250 to DATA. */
  reply: string;
  code: number;
  accepted: boolean;
  /** From `queued as ID`. */
  queueId?: string;
}

/**
 * Sends one message as an office device would (nodemailer, plain SMTP on loopback) with a unique
 * Subject and Message-ID, and reports the reply instead of throwing: a fault test looks at 451s
 * and 452s as much as at 250s.
 */
export async function sendAsDevice(port: number, subject: string, bodyBytes = 200): Promise<DeviceSend> {
  const line = `${subject} body`.padEnd(76, '-');
  const lines = Math.max(1, Math.ceil(bodyBytes / 78));
  const raw =
    `From: scanner@contoso.com\r\nTo: you@contoso.com\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W+/g, '-')}@fault.test>\r\n\r\n` +
    `${line}\r\n`.repeat(lines);
  const sha256 = createHash('sha256').update(raw).digest('hex');
  const transport = deviceClient(port);
  try {
    const info = await transport.sendMail({ envelope: { from: 'scanner@contoso.com', to: ['you@contoso.com'] }, raw });
    return { subject, sha256, reply: info.response, code: Number(info.response.slice(0, 3)), accepted: true, queueId: /queued as (\S+)/.exec(info.response)?.[1] };
  } catch (error) {
    const err = error as Error & { response?: string; responseCode?: number };
    return { subject, sha256, reply: err.response ?? err.message, code: err.responseCode ?? 0, accepted: false };
  } finally {
    transport.close();
  }
}
