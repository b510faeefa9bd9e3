import type { ConditionId } from './alertConditions.ts';

/**
 * One alert or recovery notice, as kept until every channel has taken it. It carries what the
 * agent saw (replies, counts, fixes), never a message body or a secret.
 */
export interface AlertNotice {
  id: string;
  kind: 'raised' | 'cleared';
  condition: ConditionId;
  title: string;
  detail: string;
  fix?: string;
  /** When this notice was made (ISO). */
  at: string;
  /** For a recovery: when the condition was raised. */
  since?: string;
  /** Keys (webhookKey) of the webhooks that have not taken it yet. */
  webhooksOwed: string[];
  /** The admin has not been mailed it yet. */
  emailOwed: boolean;
  /** Why it could not be mailed, from when: said in the mail once it goes. */
  emailBlocked?: { reason: string; since: string };
}

/** The box the alert comes from, so an admin with several offices knows which. */
export interface AlertOrigin {
  hostname: string;
}
