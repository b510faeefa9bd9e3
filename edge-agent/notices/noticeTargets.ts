import { noticeLoopRisk } from '../../delivery/notices/originalHeaders.ts';
import type { NoticesConfig, NoticeTarget } from '../config/noticesSchema.ts';
import { targetsInclude } from '../config/noticesSchema.ts';

export interface NoticeTargetsInput {
  notices: NoticesConfig;
  /** The sending device's own `clients[].notices`, when it has one. */
  clientTarget?: NoticeTarget;
  /** The envelope sender as the device gave it ('' for the null sender). */
  mailFrom: string;
  /** The original's header section. */
  headerSection: Buffer;
}

/** Who gets a notice about a message, and why each one that is left out is. */
export interface NoticeTargets {
  to: string[];
  suppressed: string[];
}

/**
 * The addresses a failure notice goes to. Nothing for a message from the null sender or one a
 * program generated (a bounce, an auto-reply, an alert): answering those can loop between two
 * systems (RFC 3464 section 2, RFC 3834). The sender only when it can receive mail: an address
 * with a domain outside `notices.undeliverableDomains` (a device's made-up domain).
 */
export function noticeTargets(input: NoticeTargetsInput): NoticeTargets {
  const target = input.clientTarget ?? input.notices.notify;
  if (target === 'none') return { to: [], suppressed: ['notices are off for this device'] };
  const loop = noticeLoopRisk(input.mailFrom, input.headerSection);
  if (loop) return { to: [], suppressed: [loop] };
  const to: string[] = [];
  const suppressed: string[] = [];
  if (targetsInclude(target, 'sender')) {
    const domain = /^[^@\s]+@([^@\s]+)$/.exec(input.mailFrom)?.[1]?.toLowerCase();
    if (!domain) suppressed.push(`the sender ${input.mailFrom} is not an address that receives mail`);
    else if (input.notices.undeliverableDomains.includes(domain)) suppressed.push(`the sender's domain ${domain} is in notices.undeliverableDomains`);
    else to.push(input.mailFrom);
  }
  if (targetsInclude(target, 'admin') && input.notices.admin && !to.some((a) => a.toLowerCase() === input.notices.admin?.toLowerCase())) to.push(input.notices.admin);
  return { to, suppressed };
}
