import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import * as z from 'zod';
import { INCOMING_PREFIX } from './cloudResources.ts';
import { messageEnvelopeSchema, type MessageEnvelope } from './messageEnvelope.ts';

/**
 * The SQS message the agent sends and the delivery function reads: versioned, defined once.
 *
 * Version 1 is `{ schemaVersion: 1, envelope, body }`, where the body travels either inline
 * (base64, gzip'd first when that makes the message smaller) or as a pointer to an S3 object.
 * Consumers reject any other version with a `QueueMessageError` naming it, never guess.
 */

export const QUEUE_MESSAGE_SCHEMA_VERSION = 1;

/** The hard SQS ceiling for one message (the queue's MaximumMessageSize can go up to this). */
export const SQS_MAX_MESSAGE_BYTES = 1024 * 1024;
/** MaximumMessageSize of a queue created without that attribute. */
export const SQS_DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024;
/** The smallest MaximumMessageSize SQS accepts. */
export const SQS_MIN_MESSAGE_BYTES = 1024;

/** Raw body bytes that may travel inline unless configured otherwise. */
export const DEFAULT_INLINE_MAX_BYTES = 200 * 1024;
/**
 * The largest `inlineMaxBytes` allowed: 700 KiB becomes 955,734 base64 characters, which leaves
 * about 90 KB of a 1 MiB message for the JSON and the envelope (a long RCPT TO list included).
 */
export const MAX_INLINE_MAX_BYTES = 700 * 1024;

/** Upper bound for a decoded inline body: inflating more than this is refused (gzip bombs). */
export const DEFAULT_MAX_DECODED_BYTES = 64 * 1024 * 1024;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, { error: 'expected a lowercase hex SHA-256' });

export const inlineBodySchema = z.strictObject({
  kind: z.literal('inline'),
  encoding: z.enum(['base64', 'gzip+base64']),
  data: z.base64({ error: 'expected base64 text' }),
});

export const s3BodySchema = z.strictObject({
  kind: z.literal('s3'),
  bucket: z.string().min(3).max(63),
  key: z.string().min(1).max(1024),
  size: z.number().int().nonnegative(),
  sha256: sha256Hex,
});

export const queueMessageSchema = z
  .strictObject({
    schemaVersion: z.literal(QUEUE_MESSAGE_SCHEMA_VERSION),
    envelope: messageEnvelopeSchema,
    body: z.discriminatedUnion('kind', [inlineBodySchema, s3BodySchema]),
  })
  .superRefine((message, ctx) => {
    // The pointer repeats size and digest so the object can be checked without the envelope;
    // both must describe the same bytes.
    if (message.body.kind !== 's3') return;
    if (message.body.size !== message.envelope.size) {
      ctx.addIssue({ code: 'custom', path: ['body', 'size'], message: `${message.body.size} differs from envelope.size ${message.envelope.size}` });
    }
    if (message.body.sha256 !== message.envelope.sha256) {
      ctx.addIssue({ code: 'custom', path: ['body', 'sha256'], message: 'differs from envelope.sha256' });
    }
  });

export type QueueMessage = z.infer<typeof queueMessageSchema>;
export type InlineBody = z.infer<typeof inlineBodySchema>;
export type S3Body = z.infer<typeof s3BodySchema>;
export type InlineEncoding = InlineBody['encoding'];

// ---------------------------------------------------------------------------------------------
// Errors

export type QueueMessageErrorReason =
  /** The SQS body is not JSON at all. */
  | 'not-json'
  /** JSON with a `schemaVersion` this code does not read. */
  | 'unsupported-schema-version'
  /** A field is missing or wrong; `path` names it (`envelope.rcptTo`). */
  | 'invalid-field'
  /** The inline body cannot be decoded (corrupt gzip, larger than allowed). */
  | 'invalid-body'
  /** The body's size or SHA-256 differs from the envelope's. */
  | 'body-mismatch';

/** A queue message that cannot be used. Permanent: retrying the same message gives the same error. */
export class QueueMessageError extends Error {
  constructor(
    readonly reason: QueueMessageErrorReason,
    message: string,
    readonly details: { path?: string; schemaVersion?: unknown } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'QueueMessageError';
  }

  /** Dotted path of the first invalid field ('' for the message itself), for 'invalid-field'. */
  get path(): string | undefined {
    return this.details.path;
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('').replace(/^\./, '');
}

// ---------------------------------------------------------------------------------------------
// Parsing and serialization

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads an SQS message body. Throws `QueueMessageError` with reason 'not-json',
 * 'unsupported-schema-version' (naming the version found) or 'invalid-field' (naming the path).
 */
export function parseQueueMessage(text: string): QueueMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new QueueMessageError('not-json', `queue message is not JSON: ${(error as Error).message}`, {}, { cause: error });
  }
  if (!isRecord(value)) {
    throw new QueueMessageError('invalid-field', 'queue message is not a JSON object', { path: '' });
  }
  if (!('schemaVersion' in value)) {
    throw new QueueMessageError('invalid-field', 'invalid field schemaVersion: required', { path: 'schemaVersion' });
  }
  if (value.schemaVersion !== QUEUE_MESSAGE_SCHEMA_VERSION) {
    const found = JSON.stringify(value.schemaVersion) ?? String(value.schemaVersion);
    throw new QueueMessageError(
      'unsupported-schema-version',
      `unsupported schemaVersion ${found} (this consumer reads ${QUEUE_MESSAGE_SCHEMA_VERSION})`,
      { schemaVersion: value.schemaVersion },
    );
  }
  return checkQueueMessage(value);
}

/** Schema check naming the first bad field, shared by the reader and the writer. */
function checkQueueMessage(value: unknown): QueueMessage {
  const result = queueMessageSchema.safeParse(value);
  if (!result.success) {
    const [issue] = result.error.issues;
    const path = issue ? formatPath(issue.path) : '';
    throw new QueueMessageError('invalid-field', `invalid field ${path || '(message)'}: ${issue?.message ?? 'invalid'}`, { path }, { cause: result.error });
  }
  return result.data;
}

/**
 * JSON of a queue message, checked against the schema first (a bad field throws the same
 * `QueueMessageError` the consumer would). U+FFFE and U+FFFF, which JSON allows
 * raw but SQS refuses, are written as \u escapes (they can only occur inside strings).
 */
export function serializeQueueMessage(message: QueueMessage): string {
  const checked = checkQueueMessage(message);
  return JSON.stringify(checked).replace(/[\uFFFE\uFFFF]/g, (char) => `\\u${char.charCodeAt(0).toString(16)}`);
}

/** What SQS counts against MaximumMessageSize: the UTF-8 bytes of the serialized message. */
export function queueMessageByteLength(message: QueueMessage): number {
  return Buffer.byteLength(serializeQueueMessage(message), 'utf8');
}

// ---------------------------------------------------------------------------------------------
// Inline bodies

/** Base64 characters for `bytes` bytes (with padding). */
export function base64Length(bytes: number): number {
  return 4 * Math.ceil(bytes / 3);
}

const GZIP_LABEL_EXTRA = 'gzip+base64'.length - 'base64'.length;

/**
 * Base64 of the body, gzip'd first only when that makes the serialized message smaller (the
 * longer encoding label counted). Plain base64 is therefore the largest an inline body can get.
 */
export function encodeInlineBody(body: Buffer): { encoding: InlineEncoding; data: string } {
  const plainLength = base64Length(body.length);
  if (body.length > 0) {
    const gzipped = gzipSync(body);
    if (base64Length(gzipped.length) + GZIP_LABEL_EXTRA < plainLength) {
      return { encoding: 'gzip+base64', data: gzipped.toString('base64') };
    }
  }
  return { encoding: 'base64', data: body.toString('base64') };
}

/**
 * The body bytes of an inline body. Throws `QueueMessageError('invalid-body')` on corrupt gzip or
 * when the decoded body would exceed `maxBytes` (pass the envelope's size for a tight bound).
 */
export function decodeInlineBody(body: Pick<InlineBody, 'encoding' | 'data'>, maxBytes: number = DEFAULT_MAX_DECODED_BYTES): Buffer {
  const raw = Buffer.from(body.data, 'base64');
  if (body.encoding === 'base64') {
    if (raw.length > maxBytes) {
      throw new QueueMessageError('invalid-body', `inline body of ${raw.length} bytes exceeds ${maxBytes}`);
    }
    return raw;
  }
  try {
    return gunzipSync(raw, { maxOutputLength: Math.max(1, maxBytes) });
  } catch (error) {
    const tooLarge = (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
    const message = tooLarge ? `inline body inflates beyond ${maxBytes} bytes` : `inline body is not valid gzip: ${(error as Error).message}`;
    throw new QueueMessageError('invalid-body', message, {}, { cause: error });
  }
}

/** Throws `QueueMessageError('body-mismatch')` unless the bytes have the envelope's size and SHA-256. */
export function verifyBody(envelope: Pick<MessageEnvelope, 'id' | 'size' | 'sha256'>, body: Buffer): void {
  if (body.length !== envelope.size) {
    throw new QueueMessageError('body-mismatch', `body of message ${envelope.id} has ${body.length} bytes, the envelope says ${envelope.size}`);
  }
  const digest = createHash('sha256').update(body).digest('hex');
  if (digest !== envelope.sha256) {
    throw new QueueMessageError('body-mismatch', `body of message ${envelope.id} has SHA-256 ${digest}, the envelope says ${envelope.sha256}`);
  }
}

/** A queue message carrying the body inline. Check `planQueueMessage` first: this does not. */
export function inlineQueueMessage(envelope: MessageEnvelope, body: Buffer): QueueMessage {
  return { schemaVersion: QUEUE_MESSAGE_SCHEMA_VERSION, envelope, body: { kind: 'inline', ...encodeInlineBody(body) } };
}

/** A queue message pointing at the body in S3 (size and digest taken from the envelope). */
export function s3QueueMessage(envelope: MessageEnvelope, location: { bucket: string; key: string }): QueueMessage {
  return {
    schemaVersion: QUEUE_MESSAGE_SCHEMA_VERSION,
    envelope,
    body: { kind: 's3', bucket: location.bucket, key: location.key, size: envelope.size, sha256: envelope.sha256 },
  };
}

// ---------------------------------------------------------------------------------------------
// Inline or S3

export interface QueueMessageLimits {
  /** Raw body bytes that may travel inline; larger bodies go to S3. @default DEFAULT_INLINE_MAX_BYTES */
  inlineMaxBytes?: number;
  /**
   * The queue's MaximumMessageSize: UTF-8 bytes of the serialized message, envelope included.
   * The default fits any queue; raise it (up to 1 MiB) with the queue's own limit.
   * @default SQS_DEFAULT_MAX_MESSAGE_BYTES
   */
  maxMessageBytes?: number;
}

/** Limits with defaults applied. @throws RangeError naming the option when a value is out of range. */
export function resolveQueueMessageLimits(limits: QueueMessageLimits = {}): Required<QueueMessageLimits> {
  const inlineMaxBytes = limits.inlineMaxBytes ?? DEFAULT_INLINE_MAX_BYTES;
  const maxMessageBytes = limits.maxMessageBytes ?? SQS_DEFAULT_MAX_MESSAGE_BYTES;
  if (!Number.isSafeInteger(inlineMaxBytes) || inlineMaxBytes < 0 || inlineMaxBytes > MAX_INLINE_MAX_BYTES) {
    throw new RangeError(`inlineMaxBytes must be a whole number from 0 to ${MAX_INLINE_MAX_BYTES}, got ${String(inlineMaxBytes)}`);
  }
  if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes < SQS_MIN_MESSAGE_BYTES || maxMessageBytes > SQS_MAX_MESSAGE_BYTES) {
    throw new RangeError(`maxMessageBytes must be a whole number from ${SQS_MIN_MESSAGE_BYTES} to ${SQS_MAX_MESSAGE_BYTES}, got ${String(maxMessageBytes)}`);
  }
  return { inlineMaxBytes, maxMessageBytes };
}

export type QueueMessagePlan =
  /** `messageBytes`: the most the inline message can take (plain base64; gzip only makes it smaller). */
  | { kind: 'inline'; messageBytes: number }
  | { kind: 's3'; reason: 'body-over-inline-max' | 'message-over-max-bytes'; messageBytes?: number };

/**
 * Inline or S3, decided from the size alone, before the body is read: inline when the body is at
 * most `inlineMaxBytes` and the message with the body as plain base64 fits `maxMessageBytes`.
 * The message size is computed with `serializeQueueMessage`, so multibyte envelope fields count
 * as the bytes they take.
 */
export function planQueueMessage(envelope: MessageEnvelope, bodySize: number = envelope.size, limits: QueueMessageLimits = {}): QueueMessagePlan {
  const { inlineMaxBytes, maxMessageBytes } = resolveQueueMessageLimits(limits);
  if (!Number.isSafeInteger(bodySize) || bodySize < 0) throw new RangeError(`body size must be a whole, non-negative number of bytes, got ${String(bodySize)}`);
  if (bodySize > inlineMaxBytes) return { kind: 's3', reason: 'body-over-inline-max' };
  // Base64 needs no JSON escaping, so the message is the empty-body skeleton plus the data.
  const skeleton: QueueMessage = { schemaVersion: QUEUE_MESSAGE_SCHEMA_VERSION, envelope, body: { kind: 'inline', encoding: 'base64', data: '' } };
  const messageBytes = queueMessageByteLength(skeleton) + base64Length(bodySize);
  if (messageBytes > maxMessageBytes) return { kind: 's3', reason: 'message-over-max-bytes', messageBytes };
  return { kind: 'inline', messageBytes };
}

// ---------------------------------------------------------------------------------------------
// S3 keys

/**
 * Where a body goes in S3: `<prefix><yyyy>/<mm>/<dd>/<id>.eml`, dated by the UTC day the agent
 * received it (so lifecycle rules and listings can work by day). A prefix without a trailing
 * slash gets one.
 */
export function s3KeyFor(envelope: Pick<MessageEnvelope, 'id' | 'receivedAt'>, prefix: string = INCOMING_PREFIX): string {
  const received = new Date(envelope.receivedAt);
  if (Number.isNaN(received.getTime())) {
    throw new RangeError(`receivedAt ${JSON.stringify(envelope.receivedAt)} of message ${envelope.id} is not a date`);
  }
  const day = received.toISOString().slice(0, 10).replaceAll('-', '/');
  const folder = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
  return `${folder}${day}/${envelope.id}.eml`;
}
