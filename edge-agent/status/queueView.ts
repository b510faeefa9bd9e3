import type { SqsForwarder } from '../forwarder/sqsForwarder.ts';
import type { SpoolDeliveryLoop } from '../spool-delivery/spoolDeliveryLoop.ts';

/**
 * The queue as whoever drains the spool keeps it in memory: what /metrics and the console's
 * overview show. Answered without touching the disk, so a monitor polling every second costs
 * intake nothing, however long the queue is (reading each message's envelope and state per
 * request made the overview cost two file reads per queued message).
 */
export interface QueueView {
  /** Messages queued: waiting or being delivered (embedded), or not yet handed to SQS (cloud). */
  depth(): number;
  oldestId(): string | undefined;
  /** Messages waiting after a failed attempt (the cloud retries on its own side: none here). */
  waitingForRetry(): number;
}

export function queueViewOf(loop: SpoolDeliveryLoop | undefined, forwarder: SqsForwarder | undefined): QueueView {
  if (loop) return { depth: () => loop.depth, oldestId: () => loop.oldestId, waitingForRetry: () => loop.waitingForRetry };
  if (forwarder) return { depth: () => forwarder.depth, oldestId: () => forwarder.oldestId, waitingForRetry: () => 0 };
  return { depth: () => 0, oldestId: () => undefined, waitingForRetry: () => 0 };
}
