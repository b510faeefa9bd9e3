import type { DeliveryLogger } from '../logger.ts';
import type { Settlement } from '../settle/settleAttempt.ts';

/**
 * The delivery log lines, derived from the settled attempt so that the logs and the history say
 * the same thing in every runtime. `failedTo` names where a runtime puts what it gives up on.
 */
export function logAttempt(logger: DeliveryLogger, settlement: Settlement, failedTo: 'failed area' | 'dead-letter queue'): void {
  const { event, decision, progress } = settlement;
  const base = { messageId: event.messageId, attempt: event.attempt, ms: event.durationMs };
  switch (decision.action) {
    case 'done':
      if (progress.refused.length === 0) {
        logger.info({ messageId: event.messageId, attempts: event.attempt, recipients: progress.delivered.length }, 'delivered');
      } else {
        logger.warn({ ...base, delivered: progress.delivered.length, refused: progress.refused.length, reply: progress.refused[0]?.reply }, 'delivered to some recipients, others refused');
      }
      return;
    case 'retry':
      logger.warn({ ...base, kind: event.kind, throttled: event.throttled === true, ...(event.maybeSent ? { maybeSent: true } : {}), reply: event.reply, reason: event.reason, retryAt: decision.at }, event.maybeSent ? 'delivery attempt ended without an answer: may have been sent' : 'delivery attempt failed');
      return;
    case 'hold':
      logger.error(
        { ...base, kind: 'config', reply: event.reply, reason: event.reason, operatorAction: event.operatorAction, retryAt: decision.at },
        'delivery needs the operator',
      );
      return;
    case 'give-up':
      logger.error({ ...base, kind: event.kind, reply: event.reply, reason: decision.reason, operatorAction: event.operatorAction }, `delivery failed, moved to the ${failedTo}`);
      return;
  }
}
