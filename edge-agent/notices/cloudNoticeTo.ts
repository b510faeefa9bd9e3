import { MAX_NOTICE_TO, noticeAddressSchema, type MessageEnvelope } from '../../contract/messageEnvelope.ts';
import type { AgentConfig } from '../config/agentConfigSchema.ts';
import { noticeTargets, type NoticeTargets } from './noticeTargets.ts';

/**
 * The addresses a cloud failure notice about this message goes to, for the queue message's
 * `envelope.noticeTo`: in cloud mode only the agent knows the `notices` settings and the device's
 * `clients[].notices`, so it decides at handoff with the office box's own rules (noticeTargets).
 * An address the queue contract would refuse is left out (and said why) rather than keeping the
 * message from being handed over.
 */
export function cloudNoticeTo(config: Pick<AgentConfig, 'notices' | 'clients'>, envelope: Pick<MessageEnvelope, 'client' | 'mailFrom'>, headerSection: Buffer): NoticeTargets {
  const client = config.clients.find((c) => c.name === envelope.client.name);
  const targets = noticeTargets({ notices: config.notices, ...(client?.notices ? { clientTarget: client.notices } : {}), mailFrom: envelope.mailFrom, headerSection });
  const to: string[] = [];
  const suppressed = [...targets.suppressed];
  for (const address of targets.to) {
    if (!noticeAddressSchema.safeParse(address).success) suppressed.push(`${address} is not an address the queue message can carry`);
    else if (to.length === MAX_NOTICE_TO) suppressed.push(`${address}: a notice names at most ${MAX_NOTICE_TO} addresses`);
    else to.push(address);
  }
  return { to, suppressed };
}
