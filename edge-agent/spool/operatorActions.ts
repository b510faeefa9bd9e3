import type { MessageEnvelope } from '../../contract/messageEnvelope.ts';
import type { OperatorEvent } from '../../delivery/history/deliveryEvent.ts';
import type { Spool } from './spool.ts';
import type { SpoolHistory } from './spoolHistory.ts';

/**
 * What an operator may do to a message, from the command line or the console: the same steps and
 * the same `operator` event in its history either way. The event names who did it.
 */

function operatorEvent(id: string, action: OperatorEvent['action'], by: string): OperatorEvent {
  return { type: 'operator', messageId: id, at: new Date().toISOString(), action, by };
}

/** History is for people: failing to keep it never undoes what the operator did. */
type HistoryProblem = (error: Error) => void;

/** Puts a failed message back in the queue with a fresh set of attempts (recipients still owed only). */
export async function resendFailed(spool: Spool, history: SpoolHistory, id: string, by: string, onHistoryProblem: HistoryProblem): Promise<MessageEnvelope> {
  const envelope = await spool.requeueFailed(id);
  await history
    .moveToQueue(id)
    .then(() => history.append(operatorEvent(id, 'resend', by)))
    .catch((error: unknown) => onHistoryProblem(error as Error));
  return envelope;
}

/** A held message is to be tried now rather than at its next hold retry; recorded in its history. */
export async function recordRelease(history: SpoolHistory, id: string, by: string, onHistoryProblem: HistoryProblem): Promise<void> {
  await history.append(operatorEvent(id, 'release', by)).catch((error: unknown) => onHistoryProblem(error as Error));
}

/**
 * Deletes a queued or failed message for good (the caller made sure no delivery of it is in
 * flight). Its history, closed by the `delete` event, is kept for spool.historyRetention.
 */
export async function deleteMessage(spool: Spool, history: SpoolHistory, envelope: MessageEnvelope, where: 'queue' | 'failed', by: string, onHistoryProblem: HistoryProblem): Promise<void> {
  if (where === 'queue') await spool.remove(envelope);
  else await spool.deleteFailed(envelope.id);
  await history.retire(envelope, where, operatorEvent(envelope.id, 'delete', by)).catch((error: unknown) => onHistoryProblem(error as Error));
}
