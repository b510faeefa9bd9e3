import * as z from 'zod';

/**
 * The most addresses a message's failure notice may name: the office box's targets are its sender
 * and the admin, two; the cap keeps a queue message small and bounds what one dead letter sends.
 */
export const MAX_NOTICE_TO = 4;

/** An address a failure notice may go to (254: the longest path RFC 5321 allows). */
export const noticeAddressSchema = z.email({ error: 'expected an email address' }).max(254);

/**
 * What the agent knows about a message besides its bytes. Written beside the body in the spool,
 * carried in the queue message, and read by every delivery path: the one definition all of them share.
 */
export const messageEnvelopeSchema = z.object({
  /** Stamped by the agent at intake; stable across retries and redeliveries (the idempotency key). */
  id: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/),
  receivedAt: z.iso.datetime(),
  client: z.object({
    name: z.string(),
    ip: z.string(),
  }),
  helo: z.string(),
  /** Envelope sender as the device gave it ('' for the null sender), before any send-as rewrite. */
  mailFrom: z.string(),
  rcptTo: z.array(z.string()).min(1),
  /** Byte size and SHA-256 (hex) of the spooled body (CRLF line ends, not dot-stuffed). */
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Send-as address of the client rule at intake time, if any. */
  sendAs: z.string().optional(),
  /** The Message-ID header field as the device sent it (for trace search); absent when it had none. */
  headerMessageId: z.string().max(998).optional(),
  /**
   * Where the failure notice goes should the cloud give the message up: the agent decides it at
   * handoff from its `notices` settings (the device's sender and/or the admin), the cloud adds its
   * own admin address. Absent from older agents' messages and when nobody is to get one.
   */
  noticeTo: z.array(noticeAddressSchema).min(1).max(MAX_NOTICE_TO).optional(),
});

export type MessageEnvelope = z.infer<typeof messageEnvelopeSchema>;
