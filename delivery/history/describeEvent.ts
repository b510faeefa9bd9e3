import type { DeliveryEvent } from './deliveryEvent.ts';

/**
 * One event in words: what happened (a short label) and the details (the upstream's reply, the
 * decision, the fix). `smarthost trace` prints it as a line; the console as a history entry.
 */
export function describeEvent(event: DeliveryEvent): { label: string; text: string } {
  switch (event.type) {
    case 'accepted':
      return { label: 'accepted', text: `from ${event.client.name} (${event.client.ip}), MAIL FROM <${event.mailFrom}>${event.sendAs ? ` sent as ${event.sendAs}` : ''}, to ${event.rcptTo.join(', ')}, ${event.size} bytes` };
    case 'handed-over':
      return { label: 'handed over', text: `to ${event.queue}, body ${event.bodyInS3 ? 'in S3' : 'inline'}` };
    case 'attempt': {
      const parts = [`#${event.attempt} via ${event.route}${event.mailbox ? ` as ${event.mailbox}` : ''}, ${event.durationMs} ms`];
      if (event.accepted.length > 0) parts.push(`delivered to ${event.accepted.join(', ')}`);
      if (event.refused.length > 0) parts.push(`refused ${event.refused.map((r) => r.rcpt).join(', ')}`);
      if (event.deferred.length > 0) parts.push(`deferred ${event.deferred.map((r) => r.rcpt).join(', ')}`);
      if (event.maybeSent) parts.push('may have been sent (no answer after the request left)');
      if (event.reply) parts.push(`reply: ${event.reply}${event.kind ? ` (${event.kind})` : ''}`);
      const decision = event.decision;
      parts.push(
        decision.action === 'done'
          ? 'done'
          : decision.action === 'retry'
            ? `retry at ${decision.at}`
            : decision.action === 'hold'
              ? `held for the operator, next try at ${decision.at}`
              : `given up: ${decision.reason}`,
      );
      if (event.operatorAction) parts.push(`fix: ${event.operatorAction}`);
      return { label: 'attempt', text: parts.join('; ') };
    }
    case 'operator':
      return { label: 'operator', text: `${event.action} by ${event.by}` };
    case 'notice':
      return { label: 'notice', text: `${event.kind ? `${event.kind} ` : ''}to ${event.to}: ${event.sent ? 'sent' : 'not sent'}${event.detail ? ` (${event.detail})` : ''}` };
  }
}
