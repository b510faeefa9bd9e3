import * as z from 'zod';
import { quoteValue } from '../../config-toolkit/configProblems.ts';
import { durationSchema, integerSchema } from '../../config-toolkit/fieldSchemas.ts';

/**
 * The `alerts` block: who is told when delivery from the office box is broken (edge-agent/alerts/).
 * Every default is written here once, in the file's own notation, and parsed like user input.
 */

export const WEBHOOK_FORMATS = ['json', 'teams', 'slack'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

const webhookSchema = z.strictObject({
  /** The incoming webhook's address; its path is a secret (it is masked in logs and check-config). */
  url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL (the incoming webhook address)' }),
  /** json: the alert object as is; teams: a Teams incoming webhook's card; slack: `{text, blocks}`. */
  format: z.enum(WEBHOOK_FORMATS, { error: (issue) => `expected one of ${WEBHOOK_FORMATS.join(', ')}, got ${quoteValue(issue.input)}` }).default('json'),
});

const percentSchema = integerSchema(1, 100);

const thresholdsSchema = z.strictObject({
  /** The oldest queued message may be this old before it is an alert. */
  oldestMessageAge: durationSchema.prefault('1h'),
  /** Attempts in a row that delivered to nobody. */
  failedAttempts: integerSchema(1).default(5),
  /** Every attempt failed to reach the upstream (no SMTP reply) for this long. */
  upstreamUnreachable: durationSchema.prefault('15m'),
  /** A token that could not be renewed and expires within this (or has expired). */
  tokenExpiry: durationSchema.prefault('10m'),
  /** The upstream certificate credential expires within this. */
  certificateExpiry: durationSchema.prefault('30d'),
  /** Percent of spool.maxBytes (or of the spool's disk, without it) in use. */
  spoolFillPercent: percentSchema.default(80),
});

export const alertsSchema = z.strictObject({
  /** The admin address alerts are mailed to through the upstream, or false for none. */
  email: z.union([z.email({ error: 'expected the admin address, or false' }), z.literal(false)]).default(false),
  webhooks: z.array(webhookSchema).default([]),
  thresholds: thresholdsSchema.prefault({}),
  /** How often the conditions are looked at (and failed notices retried). */
  interval: durationSchema.prefault('1m'),
  /** A webhook that has not answered in this long counts as failed (retried at the next look). */
  webhookTimeout: durationSchema.prefault('10s'),
});

export type AlertsConfig = z.output<typeof alertsSchema>;
export type AlertThresholds = AlertsConfig['thresholds'];
export type WebhookConfig = AlertsConfig['webhooks'][number];
