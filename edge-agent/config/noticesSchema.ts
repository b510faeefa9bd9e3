import * as z from 'zod';
import { quoteValue } from '../../config-toolkit/configProblems.ts';
import { domainSchema, durationOrOffSchema } from '../../config-toolkit/fieldSchemas.ts';
import { DELAYED_NOTICE_AFTER } from '../../delivery/notices/noticeDefaults.ts';

/**
 * The `notices` block: failure notices (RFC 3464 non-delivery reports) for messages the relay
 * gave up (edge-agent/notices/). Defaults are written here once, in the file's own
 * notation, and parsed like user input.
 */

/** Who gets a notice: the message's envelope sender, the admin address, both, or nobody. */
export const NOTICE_TARGETS = ['sender', 'admin', 'both', 'none'] as const;
export type NoticeTarget = (typeof NOTICE_TARGETS)[number];

export const noticeTargetSchema = z.enum(NOTICE_TARGETS, { error: (issue) => `expected one of ${NOTICE_TARGETS.join(', ')}, got ${quoteValue(issue.input)}` });

/** Whether a target setting sends to `who`. */
export function targetsInclude(target: NoticeTarget, who: 'sender' | 'admin'): boolean {
  return target === 'both' || target === who;
}

export const noticesSchema = z
  .strictObject({
    /** The admin address notices go to (notify admin or both). */
    admin: z.email({ error: 'expected the admin address' }).optional(),
    /** Absent: admin when `admin` is set, else none. */
    notify: noticeTargetSchema.optional(),
    /** Sender domains that receive no mail (a device's made-up domain): their senders get no notice. */
    undeliverableDomains: z.array(domainSchema).default([]),
    /** A message held for the operator this long after it arrived gets a "Delayed" notice (RFC 3464 Action: delayed), once; `off`: none. */
    heldAfter: durationOrOffSchema.prefault(DELAYED_NOTICE_AFTER),
  })
  .transform((notices) => ({ ...notices, notify: notices.notify ?? (notices.admin ? 'admin' : 'none') }) as const)
  .superRefine((notices, ctx) => {
    if (targetsInclude(notices.notify, 'admin') && !notices.admin) {
      ctx.addIssue({ code: 'custom', path: ['admin'], message: `required when notify is ${notices.notify} (the address notices go to)` });
    }
  });

export type NoticesConfig = z.output<typeof noticesSchema>;
