import type { FailureKind } from '../classifyReply.ts';

/**
 * The record of what happened to one message, from acceptance to its last attempt: one typed
 * event per step, the same in every runtime. The settle step writes it, the logs are derived from
 * it, and the status page, `smarthost trace`, notices, alerts and metrics read it.
 * Events never carry message bodies or secrets; header values are limited to the Message-ID.
 */
export type DeliveryEvent = AcceptedEvent | HandedOverEvent | AttemptEvent | OperatorEvent | NoticeEvent;

interface EventBase {
  /** The agent's message id (the idempotency key; `smarthost show`, logs). */
  messageId: string;
  /** ISO 8601 time of the event. */
  at: string;
}

/** The agent stored the message and the device got its 250. */
export interface AcceptedEvent extends EventBase {
  type: 'accepted';
  client: { name: string; ip: string };
  helo: string;
  mailFrom: string;
  rcptTo: string[];
  size: number;
  sendAs?: string;
  /** The Message-ID header field as the device sent it, for search; absent when it had none. */
  headerMessageId?: string;
}

/** Cloud mode: the agent handed the message to the queue (SQS, body in S3 when large). */
export interface HandedOverEvent extends EventBase {
  type: 'handed-over';
  queue: string;
  bodyInS3: boolean;
}

/** A recipient the upstream did not take this time, with what it said. */
export interface RecipientReply {
  rcpt: string;
  reply: string;
  kind: FailureKind;
}

/** What the settle step decided after an attempt. */
export type SettleDecision =
  /** Every recipient is settled: delivered, or refused for good (listed in the attempt's `refused`). */
  | { action: 'done' }
  /** Transient problem: try again at `at`. */
  | { action: 'retry'; at: string }
  /** Needs the operator (credentials, send-as, TLS...): kept and tried again at `at`, never expired. */
  | { action: 'hold'; at: string }
  /** Nothing more will be tried for the recipients still owed the message. */
  | { action: 'give-up'; reason: string };

/** One delivery attempt and its settlement. */
export interface AttemptEvent extends EventBase {
  type: 'attempt';
  /** 1 for the first attempt; counted by the settle step, never by the queue's receive count. */
  attempt: number;
  /** Which way the message left: the SMTP route, the outbox of the embedded default, or a later route. */
  route: string;
  /** The mailbox the upstream authenticates as, when known. */
  mailbox?: string;
  startedAt: string;
  durationMs: number;
  accepted: string[];
  /** Refused for good. */
  refused: RecipientReply[];
  /** Not delivered this time, worth another attempt. */
  deferred: RecipientReply[];
  /** The upstream's reply that decided the outcome (or the client's error text when there was none). */
  reply?: string;
  kind?: FailureKind;
  /** One line an operator can act on. */
  reason?: string;
  /** What to change, e.g. the PowerShell command with the values filled in. */
  operatorAction?: string;
  throttled?: boolean;
  /** Exchange Online blocked the whole mailbox: every delivery on it waits (`MAILBOX_BLOCK_MS`). */
  mailboxBlocked?: boolean;
  /**
   * The upstream took the request and gave no answer (Graph: a timeout or 5xx after sending, and
   * Graph has no idempotency key): the message may have been sent, and a retry may duplicate it.
   */
  maybeSent?: boolean;
  decision: SettleDecision;
}

/** What an operator did to the message (CLI or console), and who. */
export interface OperatorEvent extends EventBase {
  type: 'operator';
  action: 'resend' | 'release' | 'delete' | 'redrive';
  by: string;
}

/**
 * A failure notice (RFC 3464 report) about this message went out, or could not, or was held back
 * (rate limit). At most one per message and kind: the history is what a restart looks at.
 */
export interface NoticeEvent extends EventBase {
  type: 'notice';
  /** Given up (`undeliverable`) or held for the operator (`delayed`); absent in older events. */
  kind?: 'undeliverable' | 'delayed';
  to: string;
  sent: boolean;
  /** Why it was not sent, or the notice's Message-ID; never the message's body. */
  detail?: string;
}

/**
 * Where a runtime keeps the history: beside the message in the spool on the office box, in the
 * ledger in the cloud. Kept until the message is done and for a retention period after.
 */
export interface DeliveryHistoryStore {
  append(event: DeliveryEvent): Promise<void>;
  /** The message's events, oldest first; empty when none are kept (unknown id or past retention). */
  read(messageId: string): Promise<DeliveryEvent[]>;
}
