import type { FailureKind } from '../../delivery/classifyReply.ts';

/** What the delivery path reports; the Lambda backs it with Powertools Metrics (EMF). */
export interface DeliveryMetrics {
  delivered(latencyMs: number, bytes: number): void;
  failed(kind: FailureKind | 'malformed'): void;
  retried(throttled: boolean): void;
  /** A message held for the operator: retried on the slow schedule until the cause is fixed. */
  heldForOperator(): void;
}

export const noMetrics: DeliveryMetrics = {
  delivered() {},
  failed() {},
  retried() {},
  heldForOperator() {},
};
