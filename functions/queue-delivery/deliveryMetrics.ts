import type { FailureKind } from '../../delivery/classifyReply.ts';

/** What the delivery path reports; the Lambda backs it with Powertools Metrics (EMF). */
export interface DeliveryMetrics {
  delivered(latencyMs: number, bytes: number): void;
  failed(kind: FailureKind | 'malformed'): void;
  retried(throttled: boolean): void;
  /** A message held for the operator: retried on the slow schedule until the cause is fixed. */
  heldForOperator(): void;
  /** A message put back unattempted: no mailbox it may use had room. */
  deferred(): void;
  /** Days until the upstream credential stops working (credentialExpiresInDays), when it is known. */
  credentialExpiresIn(days: number): void;
}

export const noMetrics: DeliveryMetrics = {
  delivered() {},
  failed() {},
  retried() {},
  heldForOperator() {},
  deferred() {},
  credentialExpiresIn() {},
};
