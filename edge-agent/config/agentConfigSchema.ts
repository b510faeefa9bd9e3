import ipaddr from 'ipaddr.js';
import * as z from 'zod';
import { parseByteSize } from '../../delivery/byteSize.ts';
import { upstreamConfigSchema } from '../../delivery/upstreamConfig.ts';
import { INCOMING_PREFIX } from '../../contract/cloudResources.ts';
import { DEFAULT_INLINE_MAX_BYTES, MAX_INLINE_MAX_BYTES } from '../../contract/queueMessage.ts';
import { domainSchema, durationSchema, integerSchema, isInlinePem } from '../../config-toolkit/fieldSchemas.ts';
import { configErrorMap, quoteValue } from '../../config-toolkit/configProblems.ts';
import { alertsSchema } from './alertsSchema.ts';
import { noticesSchema, noticeTargetSchema, targetsInclude } from './noticesSchema.ts';

/**
 * The agent's whole configuration file. Every object is strict so a misspelt key is an error
 * rather than a silently ignored setting, and defaults are written in the file's own notation
 * (`'35MB'`, `'5m'`) and parsed like user input, so the output is always normalized:
 * sizes in bytes, durations in milliseconds.
 */

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const always = { when: () => true };

const SIZE_HINT = 'expected a size such as 35MB, 512KB or a number of bytes';

const byteSizeSchema = z.unknown().transform((value, ctx) => {
  if (typeof value === 'string' || typeof value === 'number') {
    let bytes: number | undefined;
    try {
      bytes = parseByteSize(value);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
    }
    if (bytes !== undefined && Number.isSafeInteger(bytes)) {
      if (bytes > 0) return bytes;
      ctx.addIssue({ code: 'custom', message: 'must be greater than zero' });
      return z.NEVER;
    }
  }
  ctx.addIssue({ code: 'custom', message: `${SIZE_HINT}, got ${quoteValue(value)}` });
  return z.NEVER;
});

const booleanSchema = z.preprocess(
  (value) => (value === 'true' ? true : value === 'false' ? false : value),
  z.boolean(),
);

const nonEmptyString = z.string().min(1);

/** Files the agent itself reads. Inline PEM is for the cloud secret only; here it would end up printed. */
const filePathSchema = nonEmptyString.superRefine((value, ctx) => {
  if (isInlinePem(value)) {
    ctx.addIssue({ code: 'custom', message: 'expected a file path (inline PEM is accepted only under upstream)' });
  }
});

const ADDRESS_HINT = 'expected an IP address or CIDR range, IPv4 or IPv6, such as 10.0.0.5 or 10.0.0.0/24';

/**
 * ipaddr.js also accepts legacy IPv4 spellings ('10.1', hex, octal) that nobody means in an allow
 * list, so IPv4 must be four decimal parts. A range with host bits set is refused because it is
 * most often a typo for a single address or for a different network.
 */
function addressProblem(text: string): string | undefined {
  const [addressPart = '', prefixPart] = text.split('/', 2);
  const isV4 = ipaddr.IPv4.isValidFourPartDecimal(addressPart);
  const isV6 = !isV4 && ipaddr.IPv6.isValid(addressPart);
  if (!isV4 && !isV6) return `${ADDRESS_HINT}, got ${quoteValue(text)}`;
  if (prefixPart === undefined) return undefined;
  const maxPrefix = isV4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefixPart) || Number(prefixPart) > maxPrefix) {
    return `prefix length must be 0 to ${maxPrefix}, got ${quoteValue(text)}`;
  }
  const network = isV4 ? ipaddr.IPv4.networkAddressFromCIDR(text) : ipaddr.IPv6.networkAddressFromCIDR(text);
  const given = ipaddr.parse(addressPart);
  if (network.toNormalizedString() !== given.toNormalizedString()) {
    return `${quoteValue(text)} has host bits set; did you mean ${network.toString()}/${prefixPart}?`;
  }
  return undefined;
}

const addressSchema = z
  .string({ error: (issue) => (issue.input === undefined ? undefined : `${ADDRESS_HINT}, got ${quoteValue(issue.input)}`) })
  .transform((text) => text.trim())
  .superRefine((text, ctx) => {
    const problem = addressProblem(text);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });


const tlsSchema = z.strictObject({
  cert: filePathSchema,
  key: filePathSchema,
  /** TLSv1 and TLSv1.1 exist for old printers only. */
  minVersion: z.enum(['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
});

/** Loopback: the only place the status listener may run without a credential. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (!ipaddr.isValid(host)) return false;
  const address = ipaddr.process(host);
  return address.range() === 'loopback';
}

const statusAuthSchema = z
  .strictObject({
    /** Sent as `Authorization: Bearer TOKEN` (Prometheus `authorization`, scripts). */
    token: z.string().min(16, { error: 'must be at least 16 characters (a random string, e.g. openssl rand -hex 24)' }).optional(),
    /** Basic authentication: what a browser asks for when the console is opened. */
    username: nonEmptyString.optional(),
    password: z.string().min(8, { error: 'must be at least 8 characters' }).optional(),
  })
  .superRefine((auth, ctx) => {
    if ((auth.username === undefined) !== (auth.password === undefined)) {
      ctx.addIssue({ code: 'custom', path: [auth.username === undefined ? 'username' : 'password'], message: 'username and password go together' });
    }
    if (auth.token === undefined && auth.username === undefined && auth.password === undefined) {
      ctx.addIssue({ code: 'custom', message: 'needs a token, or a username and password' });
    }
  });

/** The HTTP listener for health checks, Prometheus metrics and the web console (edge-agent/status/). */
const statusSchema = z
  .strictObject({
    /** Loopback by default: anything else needs `auth`. */
    host: nonEmptyString.default('127.0.0.1'),
    /** 0 picks a free port (tests). */
    port: integerSchema(0, 65535).default(8025),
    auth: statusAuthSchema.optional(),
    /** Optional HTTPS, with the same keys as listen.tls. */
    tls: tlsSchema.optional(),
    /** /readyz fails when the upstream has refused or been unreachable for every attempt this long. */
    readyWindow: durationSchema.prefault('15m'),
  })
  .superRefine((status, ctx) => {
    if (!status.auth && !isLoopbackHost(status.host)) {
      ctx.addIssue({ code: 'custom', path: ['auth'], message: `required when host is not loopback (${status.host}): set a token, or a username and password` });
    }
  });

const listenSchema = z.strictObject({
  host: nonEmptyString.default('127.0.0.1'),
  /** 0 picks a free port (tests). */
  port: integerSchema(0, 65535).default(2525),
  /** Bytes. */
  maxMessageSize: byteSizeSchema.prefault('35MB'),
  maxRecipients: integerSchema(1).default(500),
  bareNewlines: z.enum(['normalize', 'reject']).default('normalize'),
  /** NUL bytes in a message: removed, or the message refused (edge-agent/intake/nulBytes.ts). */
  nulBytes: z.enum(['strip', 'reject']).default('strip'),
  tls: tlsSchema.optional(),
  maxConnections: integerSchema(1).default(100),
  maxConnectionsPerClient: integerSchema(1).default(20),
  /** Milliseconds. */
  idleTimeout: durationSchema.prefault('5m'),
});

const clientSchema = z
  .strictObject({
    name: nonEmptyString,
    address: addressSchema,
    /** Rewrites the envelope sender and From header to this address. */
    sendAs: z.email().optional(),
    auth: z.strictObject({ username: nonEmptyString, password: nonEmptyString }).optional(),
    /** Accepts any AUTH credentials: for printers that insist on authenticating. A risk, off by default. */
    acceptAnyAuth: booleanSchema.default(false),
    /** Who gets this device's failure notices, instead of notices.notify. */
    notices: noticeTargetSchema.optional(),
  })
  .superRefine((client: unknown, ctx) => {
    if (isRecord(client) && client.auth !== undefined && client.acceptAnyAuth === true) {
      ctx.addIssue({
        code: 'custom',
        path: ['acceptAnyAuth'],
        message: 'cannot be combined with auth: a client either checks its credentials or accepts any',
      });
    }
  }, always);

const clientsSchema = z.array(clientSchema).superRefine((clients: unknown, ctx) => {
  if (!Array.isArray(clients)) return;
  const firstIndexByName = new Map<string, number>();
  clients.forEach((client: unknown, index) => {
    const name = isRecord(client) ? client.name : undefined;
    if (typeof name !== 'string') return;
    const first = firstIndexByName.get(name);
    if (first === undefined) firstIndexByName.set(name, index);
    else ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `duplicate name '${name}' (also clients[${first}].name)` });
  });
}, always);

const sqsSchema = z.strictObject({
  /** The queue the agent sends to (and `smarthost worker` reads from). */
  queueUrl: z.url({ protocol: /^https?$/, error: 'expected the queue URL, such as https://sqs.eu-west-1.amazonaws.com/123456789012/smarthost-mail' }),
  /** Absent: the AWS SDK's default (AWS_REGION, profile). */
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, { error: 'expected an AWS region such as eu-west-1' }).optional(),
  /** Bucket for bodies too large to travel inline. */
  bucket: nonEmptyString,
  prefix: nonEmptyString.default(INCOMING_PREFIX),
  /**
   * Bodies up to this size travel inside the SQS message when the queue's MaximumMessageSize
   * takes them (the forwarder asks the queue); larger ones go by S3.
   */
  inlineMaxBytes: byteSizeSchema
    .prefault(DEFAULT_INLINE_MAX_BYTES)
    .refine((bytes) => bytes <= MAX_INLINE_MAX_BYTES, { error: `must be at most ${MAX_INLINE_MAX_BYTES / 1024}KiB (the SQS message limit is 1 MiB after base64)` }),
  /** Worker only: where permanent and needs-operator failures are moved, with their reason. */
  deadLetterQueueUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** Worker only: DynamoDB table of delivery records (idempotency, per-recipient progress). */
  ledgerTable: nonEmptyString.optional(),
  /** Worker only: timings of `smarthost worker` (the Lambda function's are set by the CDK app). */
  worker: z
    .strictObject({
      /** Long-poll wait (SQS allows 0 to 20 s; 20 is the cheapest). */
      pollWait: durationSchema.prefault('20s').refine((ms) => ms <= 20_000, { error: 'must be at most 20s (the SQS maximum)' }),
      /** How long a received message stays hidden while it is delivered; a killed worker's messages come back after it. */
      visibilityTimeout: durationSchema.prefault('6m').refine((ms) => ms >= 1000 && ms <= 12 * 3_600_000, { error: 'must be between 1s and 12h (SQS limits)' }),
      /** How long a worker's claim on a message holds in the ledger; another worker treats it as busy until then. */
      lease: durationSchema.prefault('6m'),
      /** Pause after the queue could not be reached. */
      errorBackoff: durationSchema.prefault('5s'),
    })
    .prefault({})
    .superRefine((worker, ctx) => {
      // A message that reappears while its claim still holds is put back as busy, again and again.
      if (worker.lease > worker.visibilityTimeout) {
        ctx.addIssue({ code: 'custom', path: ['lease'], message: 'must not be longer than visibilityTimeout (a redelivered message would find its claim still held)' });
      }
    }),
});

const queueSchema = z
  .strictObject({
    /** local: deliver from this box; sqs: hand every message to SQS and let the cloud deliver. */
    kind: z.enum(['local', 'sqs']).default('local'),
    sqs: sqsSchema.optional(),
  })
  .superRefine((queue: unknown, ctx) => {
    if (!isRecord(queue)) return;
    if (queue.kind === 'sqs' && queue.sqs === undefined) {
      ctx.addIssue({ code: 'custom', path: ['sqs'], message: 'required when kind is sqs (queueUrl and bucket)' });
    }
  }, always);

/** `upstream: { secretArn }` takes the whole upstream block from Secrets Manager (same JSON shape). */
const upstreamSecretRefSchema = z.strictObject({
  secretArn: z.string().regex(/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/, {
    error: 'expected a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)',
  }),
});

const upstreamSchema = z.unknown().transform((value, ctx) => {
  const schema = isRecord(value) && 'secretArn' in value ? upstreamSecretRefSchema : upstreamConfigSchema;
  const result = schema.safeParse(value, { error: configErrorMap });
  if (!result.success) {
    for (const issue of result.error.issues) ctx.addIssue(issue as Parameters<typeof ctx.addIssue>[0]);
    return z.NEVER;
  }
  return result.data as z.output<typeof upstreamConfigSchema> | z.output<typeof upstreamSecretRefSchema>;
});

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const agentConfigSchema = z.strictObject({
  listen: listenSchema.prefault({}),
  /** Who may relay. Empty: loopback only. */
  clients: clientsSchema.default([]),
  senders: z
    .strictObject({
      /** Lowercased. Absent: any sender domain. */
      allowedDomains: z
        .array(domainSchema)
        .min(1, { error: 'must list at least one domain (remove the key to allow any sender domain)' })
        .optional(),
    })
    .prefault({}),
  spool: z
    .strictObject({
      dir: nonEmptyString.default('./data/spool'),
      /** Bytes. */
      maxBytes: byteSizeSchema.optional(),
      /** Milliseconds a done message's delivery history is kept in history/ (`smarthost trace`). */
      historyRetention: durationSchema.prefault('30d'),
      /** Milliseconds a message stays in failed/ before it is deleted (its history moves to history/). */
      failedRetention: durationSchema.prefault('30d'),
    })
    .prefault({}),
  /** Where mail goes when no upstream is configured (the embedded default). */
  outbox: z
    .strictObject({
      dir: nonEmptyString.default('./data/outbox'),
      /** Milliseconds an outbox file is kept. */
      retention: durationSchema.prefault('14d'),
    })
    .prefault({}),
  queue: queueSchema.prefault({}),
  upstream: upstreamSchema.optional(),
  retry: z
    .strictObject({
      /** Delays between attempts, in milliseconds. */
      schedule: z.array(durationSchema).min(1).prefault(['1m', '5m', '15m', '1h', '4h']),
      /** Milliseconds after arrival when a message stops being retried. */
      maxAge: durationSchema.prefault('2d'),
    })
    .prefault({}),
  log: z.strictObject({ level: z.enum(LOG_LEVELS).default('info') }).prefault({}),
  /** Absent: no HTTP listener. */
  status: statusSchema.optional(),
  /** Absent: no alerts (edge-agent/alerts/). */
  alerts: alertsSchema.optional(),
  /** Failure notices (edge-agent/notices/); by default none unless notices.admin is set. */
  notices: noticesSchema.prefault({}),
}).superRefine((config, ctx) => {
  config.clients.forEach((client, index) => {
    if (client.notices && targetsInclude(client.notices, 'admin') && !config.notices.admin) {
      ctx.addIssue({ code: 'custom', path: ['clients', index, 'notices'], message: `${client.notices} needs notices.admin (the address notices go to)` });
    }
  });
});

export type AgentConfig = z.output<typeof agentConfigSchema>;
export type AgentConfigInput = z.input<typeof agentConfigSchema>;
export type ClientConfig = AgentConfig['clients'][number];
export type ListenConfig = AgentConfig['listen'];
export type StatusConfig = NonNullable<AgentConfig['status']>;
export type SqsQueueConfig = NonNullable<AgentConfig['queue']['sqs']>;
export type UpstreamSecretRef = z.output<typeof upstreamSecretRefSchema>;

/** The inline `upstream` block, or undefined when there is none or it points at a secret. */
export function inlineUpstream(config: Pick<AgentConfig, 'upstream'>): z.output<typeof upstreamConfigSchema> | undefined {
  return config.upstream && !('secretArn' in config.upstream) ? config.upstream : undefined;
}
