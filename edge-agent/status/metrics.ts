import type { EventEmitter } from 'node:events';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { TokenHealth } from '../../delivery/token/tokenProvider.ts';
import type { IntakeEvents } from '../intake/smtpIntake.ts';
import type { AttemptRecord } from '../spool-delivery/spoolDeliveryLoop.ts';
import { arrivalOf } from '../spool/messageId.ts';
import type { RelayActivity } from './relayActivity.ts';

/** What the gauges read at scrape time: in-memory counts, never a walk over the spool. */
export interface MetricSources {
  activity: RelayActivity;
  /** Messages queued (waiting or in flight). */
  queueDepth: () => number;
  /** Id of the oldest queued message. */
  oldestQueuedId: () => string | undefined;
  /** Bytes of the queued bodies. */
  queuedBytes: () => number;
  /** Messages in failed/. */
  failedCount: () => number;
  /** Disk use of the spool's areas and the outbox, from the last periodic count. */
  diskUse: () => Record<string, number>;
  /** The upstream's OAuth2 token client (absent: no OAuth2 upstream on this box). */
  tokens?: { health(): TokenHealth };
  /** When the upstream's certificate credential expires (epoch ms); absent with a client secret. */
  certificateNotAfter?: number;
}

/** Attempt durations: from a fast LAN relay (tens of ms) to Exchange Online on a bad day. */
const LATENCY_BUCKETS_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * The agent's Prometheus metrics (prom-client, its own registry: nothing else in the process
 * registers into it). Counters follow the intake's and the delivery loop's events; gauges are
 * computed when scraped from what is already in memory.
 */
export class AgentMetrics {
  readonly registry = new Registry();
  private readonly accepted = new Counter({ name: 'smarthost_messages_accepted_total', help: 'Messages stored and acknowledged with 250', registers: [this.registry] });
  private readonly acceptedBytes = new Counter({ name: 'smarthost_accepted_bytes_total', help: 'Bytes of the messages accepted', registers: [this.registry] });
  private readonly refused = new Counter({ name: 'smarthost_messages_refused_total', help: 'Connections, senders or messages turned away, by reason', labelNames: ['reason'], registers: [this.registry] });
  private readonly delivered = new Counter({ name: 'smarthost_messages_delivered_total', help: 'Messages delivered to every recipient', registers: [this.registry] });
  private readonly deliveredBytes = new Counter({ name: 'smarthost_delivered_bytes_total', help: 'Bytes of the messages delivered', registers: [this.registry] });
  private readonly failed = new Counter({ name: 'smarthost_messages_failed_total', help: 'Messages moved to the failed area, by failure class', labelNames: ['class'], registers: [this.registry] });
  private readonly heldTotal = new Counter({ name: 'smarthost_delivery_held_total', help: 'Attempts held for the operator (credentials, send-as, TLS...)', registers: [this.registry] });
  private readonly retried = new Counter({ name: 'smarthost_delivery_retries_total', help: 'Attempts that will be retried (temporary failures)', registers: [this.registry] });
  private readonly throttled = new Counter({ name: 'smarthost_delivery_throttled_total', help: 'Attempts the upstream throttled', registers: [this.registry] });
  private readonly attempts = new Counter({ name: 'smarthost_delivery_attempts_total', help: 'Delivery attempts, by outcome', labelNames: ['outcome'], registers: [this.registry] });
  private readonly latency = new Histogram({ name: 'smarthost_delivery_duration_seconds', help: 'Duration of one delivery attempt', buckets: LATENCY_BUCKETS_SECONDS, registers: [this.registry] });

  constructor(sources: MetricSources) {
    const { activity } = sources;
    const registers = [this.registry];
    new Gauge({ name: 'smarthost_queue_messages', help: 'Messages queued (waiting or being delivered)', registers, collect() { this.set(sources.queueDepth()); } });
    new Gauge({
      name: 'smarthost_queue_oldest_message_age_seconds',
      help: 'Age of the oldest queued message (0 when the queue is empty)',
      registers,
      collect() {
        const id = sources.oldestQueuedId();
        const at = id ? arrivalOf(id) : undefined;
        this.set(at ? Math.max(0, (Date.now() - at.getTime()) / 1000) : 0);
      },
    });
    new Gauge({ name: 'smarthost_queue_bytes', help: 'Bytes of the queued message bodies', registers, collect() { this.set(sources.queuedBytes()); } });
    new Gauge({ name: 'smarthost_held_messages', help: 'Queued messages waiting for the operator', registers, collect() { this.set(activity.held.size); } });
    new Gauge({ name: 'smarthost_failed_messages', help: 'Messages in the failed area', registers, collect() { this.set(sources.failedCount()); } });
    new Gauge({
      name: 'smarthost_upstream_last_success_timestamp_seconds',
      help: 'When an attempt last delivered to a recipient (Unix time; 0: not since start)',
      registers,
      collect() { this.set((activity.lastDeliveredAt ?? 0) / 1000); },
    });
    new Gauge({
      name: 'smarthost_spool_disk_bytes',
      help: 'Disk use by area (queue, failed, history, outbox), counted every few minutes',
      labelNames: ['area'],
      registers,
      collect() {
        for (const [area, bytes] of Object.entries(sources.diskUse())) this.set({ area }, bytes);
      },
    });
    // The credential's health as numbers a Prometheus rule can alert on before mail stops: a token
    // renewal that keeps failing, a certificate close to its end.
    const { tokens, certificateNotAfter } = sources;
    if (tokens) {
      new Gauge({
        name: 'smarthost_token_expiry_timestamp_seconds',
        help: 'When the current OAuth2 access token expires (Unix time; 0: none obtained yet)',
        registers,
        collect() { this.set((tokens.health().expiresAt ?? 0) / 1000); },
      });
      new Gauge({
        name: 'smarthost_token_renewal_failing',
        help: '1 while the OAuth2 token cannot be renewed (the AADSTS error is in the log and on the console), else 0',
        registers,
        collect() { this.set(tokens.health().renewalFailedAt === undefined ? 0 : 1); },
      });
    }
    if (certificateNotAfter !== undefined) {
      new Gauge({
        name: 'smarthost_certificate_expiry_timestamp_seconds',
        help: "When the upstream's certificate credential expires (Unix time)",
        registers,
        collect() { this.set(certificateNotAfter / 1000); },
      });
    }
    collectDefaultMetrics({ register: this.registry, prefix: 'smarthost_' });
  }

  observeIntake(intake: EventEmitter<IntakeEvents>): void {
    intake.on('accepted', (envelope) => {
      this.accepted.inc();
      this.acceptedBytes.inc(envelope.size);
    });
    intake.on('refused', (reason) => this.refused.inc({ reason }));
  }

  observeLoop(loop: { on(event: 'attempt', listener: (record: AttemptRecord) => void): unknown }): void {
    loop.on('attempt', (record) => {
      const { event } = record;
      this.latency.observe(event.durationMs / 1000);
      if (event.throttled) this.throttled.inc();
      const decision = event.decision.action;
      this.attempts.inc({ outcome: record.action === 'delivered' ? 'delivered' : decision === 'hold' ? 'held' : decision === 'retry' ? 'retry' : 'failed' });
      if (record.action === 'delivered') {
        this.delivered.inc();
        this.deliveredBytes.inc(record.size);
      } else if (record.action === 'failed') {
        this.failed.inc({ class: event.kind ?? (event.refused.length > 0 ? 'permanent' : 'unknown') });
      } else if (decision === 'hold') {
        this.heldTotal.inc();
      } else {
        this.retried.inc();
      }
    });
  }

  /** Cloud mode: the forwarder hands messages to SQS instead of delivering them. */
  observeForwarder(forwarder: EventEmitter<{ forwarded: [unknown]; failed: [unknown, Error] }>): void {
    const handedOver = new Counter({ name: 'smarthost_messages_handed_over_total', help: 'Messages handed to SQS (cloud mode)', registers: [this.registry] });
    const handOverFailed = new Counter({ name: 'smarthost_hand_over_failures_total', help: 'Hand-overs to SQS that failed and will be retried', registers: [this.registry] });
    forwarder.on('forwarded', () => handedOver.inc());
    forwarder.on('failed', () => handOverFailed.inc());
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
