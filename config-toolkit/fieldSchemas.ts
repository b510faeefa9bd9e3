import * as z from 'zod';
import { quoteValue } from './configProblems.ts';
import { parseDuration } from './duration.ts';

/** Inline PEM is told apart from a file path by its armour line; paths never start with dashes. */
export function isInlinePem(value: string): boolean {
  return value.trimStart().startsWith('-----BEGIN');
}

/** Values substituted from `${ENV}` are strings, so numeric settings also accept their decimal spelling. */
export function integerSchema(min: number, max: number = Number.MAX_SAFE_INTEGER) {
  return z.preprocess(
    (value) => (typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value),
    z.number().int().min(min).max(max),
  );
}

const DURATION_HINT = 'expected a duration such as 30s, 5m, 2d or 1h30m';

/** A duration in the config's notation, as milliseconds. Zero is refused: it would spin. */
export const durationSchema = z.unknown().transform((value, ctx) => {
  if (typeof value === 'string') {
    let ms: number | undefined;
    try {
      ms = parseDuration(value);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
    }
    if (ms !== undefined && Number.isFinite(ms)) {
      if (ms > 0) return ms;
      ctx.addIssue({ code: 'custom', message: 'must be longer than zero' });
      return z.NEVER;
    }
  }
  ctx.addIssue({ code: 'custom', message: `${DURATION_HINT}, got ${quoteValue(value)}` });
  return z.NEVER;
});

/** `off`, or a duration (ms): a timer that can be switched off. */
export const durationOrOffSchema = z.union([z.literal('off'), durationSchema], { error: (issue) => `expected off or a duration such as 30m, 4h or 1d, got ${quoteValue(issue.input)}` });

/** A certificate, key or CA bundle: a file path, or inline PEM (the cloud secret carries PEM text). */
export const pemOrPathSchema = z
  .string()
  .min(1)
  .superRefine((value, ctx) => {
    // The value is never echoed: it may be a private key.
    if (isInlinePem(value) && !/-----END [^\n]*-----/.test(value)) {
      ctx.addIssue({ code: 'custom', message: 'inline PEM has no -----END line (was it cut short?)' });
    }
  });


const DOMAIN_PATTERN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** A domain name, lowercased (senders.allowedDomains, notices.undeliverableDomains). */
export const domainSchema = z
  .string()
  .transform((value) => value.trim().toLowerCase())
  .superRefine((value, ctx) => {
    if (!DOMAIN_PATTERN.test(value)) {
      ctx.addIssue({ code: 'custom', message: `expected a domain such as contoso.com, got ${quoteValue(value)}` });
    }
  });
