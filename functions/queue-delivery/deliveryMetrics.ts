import type { FailureKind } from '../../delivery/classifyReply.ts';

/** What the delivery path reports; the Lambda backs it with Powertools Metrics (EMF). */
export interface DeliveryMetrics {
  delivered(latencyMs: number, bytes: number): void;
  failed(kind: FailureKind | 'malformed'): void;
  retried(throttled: boolean): void;
}

export const noMetrics: DeliveryMetrics = {
  delivered() {},
  failed() {},
  retried() {},
};
