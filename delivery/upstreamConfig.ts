import * as z from 'zod';
import { configErrorMap, formatConfigIssues, isRecord, quoteValue, type ConfigParseResult } from '../config-toolkit/configProblems.ts';
import { durationSchema, integerSchema, isInlinePem, pemOrPathSchema } from '../config-toolkit/fieldSchemas.ts';
import { maskPathInPlace } from '../config-toolkit/secretMask.ts';
import { CLOUD_PRESETS, CLOUD_PRESET_NAMES } from './cloudPresets.ts';
import { EXCHANGE_LIMITS } from './exchangeLimits.ts';

/**
 * The `upstream` block: where and how delivered mail is submitted. The agent reads it from YAML and
 * the cloud functions read the same JSON from Secrets Manager, so this file depends on nothing of
 * either runtime. Problems are reported as `key.path: message` strings, the same format everywhere.
 */

const hostSchema = z
  .string()
  .min(1)
  .superRefine((value, ctx) => {
    if (/\s/.test(value)) ctx.addIssue({ code: 'custom', message: `expected a host name, got ${quoteValue(value)}` });
  });

const secretSchema = z.string().min(1);

const authoritySchema = z
  .string()
  .superRefine((value, ctx) => {
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'https:') {
      ctx.addIssue({ code: 'custom', message: `expected an https:// URL such as https://login.microsoftonline.com, got ${quoteValue(value)}` });
    } else if (url.search || url.hash) {
      ctx.addIssue({ code: 'custom', message: 'must not carry a query or fragment' });
    }
  })
  // The token endpoint is built as `{authority}/{tenantId}/...`: a trailing slash would double it.
  .transform((value) => value.replace(/\/+$/, ''));

function requiredWhen(type: string) {
  return (issue: { input?: unknown }) => (issue.input === undefined ? `required when type is ${type}` : undefined);
}

// ---------------------------------------------------------------------------------------------
// The upstream block

const oauth2AuthSchema = z
  .strictObject({
    type: z.literal('oauth2'),
    /** Directory (tenant) id: a GUID or a verified domain such as contoso.onmicrosoft.com. */
    tenantId: z
      .string({ error: requiredWhen('oauth2') })
      .min(1)
      .regex(/^[A-Za-z0-9.-]+$/, { error: 'expected a tenant GUID or domain name' }),
    clientId: z.string({ error: requiredWhen('oauth2') }).min(1),
    clientSecret: secretSchema.optional(),
    /** Signs a client assertion instead of sending a secret. */
    certificate: z.strictObject({ key: pemOrPathSchema, cert: pemOrPathSchema }).optional(),
    authority: authoritySchema.default('https://login.microsoftonline.com'),
    /** Token scope: Exchange Online's resource in this cloud (GCC High: https://outlook.office365.us/.default). */
    scope: z
      .string()
      .regex(/^https:\/\/\S+\/\.default$/, { error: 'expected a resource scope ending in /.default, such as https://outlook.office365.com/.default' })
      .default('https://outlook.office365.com/.default'),
    /** The mailbox that sends (SASL XOAUTH2 `user=`). */
    user: z.email({ error: requiredWhen('oauth2') }),
  })
  .superRefine(
    (auth: unknown, ctx) => {
      if (!isRecord(auth)) return;
      const hasSecret = auth.clientSecret !== undefined;
      const hasCertificate = auth.certificate !== undefined;
      if (!hasSecret && !hasCertificate) {
        ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: 'required when type is oauth2, unless certificate is given' });
      } else if (hasSecret && hasCertificate) {
        ctx.addIssue({ code: 'custom', path: ['certificate'], message: 'give either clientSecret or certificate, not both' });
      }
    },
    // Run even when other fields fail, so every problem is listed in one pass.
    { when: () => true },
  );

const basicAuthSchema = z.strictObject({
  type: z.literal('basic'),
  user: z.string({ error: requiredWhen('basic') }).min(1),
  password: z.string({ error: requiredWhen('basic') }).min(1),
});

const noAuthSchema = z.strictObject({ type: z.literal('none') });

const AUTH_TYPES = 'oauth2 | basic | none';

export const upstreamAuthSchema = z.discriminatedUnion('type', [oauth2AuthSchema, basicAuthSchema, noAuthSchema], {
  error: (issue) => {
    if (issue.code !== 'invalid_union') return undefined;
    const type = isRecord(issue.input) ? issue.input.type : undefined;
    return type === undefined ? `required: ${AUTH_TYPES}` : `expected ${AUTH_TYPES}, got ${quoteValue(type)}`;
  },
});

/**
 * `preset` fills host, auth.authority and auth.scope (SMTP, or Graph with route graph) and
 * graph.baseUrl where the block leaves them out; every value given wins.
 */
function applyPreset(input: unknown): unknown {
  if (!isRecord(input) || typeof input.preset !== 'string' || !(input.preset in CLOUD_PRESETS)) return input;
  const preset = CLOUD_PRESETS[input.preset as keyof typeof CLOUD_PRESETS];
  const graphRoute = input.route === 'graph';
  const auth = isRecord(input.auth) && input.auth.type === 'oauth2'
    ? { authority: preset.authority, scope: graphRoute ? preset.graphScope : preset.smtpScope, ...input.auth }
    : input.auth;
  const graph = graphRoute ? { baseUrl: preset.graphBaseUrl, smtpScope: preset.smtpScope, ...(isRecord(input.graph) ? input.graph : {}) } : input.graph;
  return { host: preset.host, ...input, auth, ...(graph === undefined ? {} : { graph }) };
}

/**
 * Route graph without a preset and without auth.scope: the token is for the Graph the block names
 * (graph.baseUrl), not for Exchange Online's SMTP, whose scope is the schema's default.
 */
function defaultGraphScope(input: unknown): unknown {
  if (!isRecord(input) || input.route !== 'graph' || !isRecord(input.auth) || input.auth.type !== 'oauth2' || input.auth.scope !== undefined) return input;
  const baseUrl = isRecord(input.graph) && typeof input.graph.baseUrl === 'string' ? input.graph.baseUrl : CLOUD_PRESETS.worldwide.graphBaseUrl;
  return { ...input, auth: { ...input.auth, scope: `${baseUrl.replace(/\/+$/, '')}/.default` } };
}

/**
 * A pool (`mailboxes`) authenticates each mailbox as itself: `auth.user` (and a mailbox's own
 * `auth.user`) may be left out and is then the first mailbox (the mailbox itself), so the block
 * keeps one shape for every runtime and the single-mailbox form parses as before.
 */
function fillPoolUsers(input: unknown): unknown {
  if (!isRecord(input) || !Array.isArray(input.mailboxes)) return input;
  // A bad first address is reported at its own key only, not again as auth.user.
  const first = input.mailboxes.find((m): m is Record<string, unknown> => isRecord(m) && z.email().safeParse(m.mailbox).success);
  const withUser = (auth: unknown, user: unknown): unknown =>
    isRecord(auth) && (auth.type === 'oauth2' || auth.type === 'basic') && auth.user === undefined && typeof user === 'string' ? { ...auth, user } : auth;
  return {
    ...input,
    auth: withUser(input.auth, first?.mailbox),
    mailboxes: input.mailboxes.map((m: unknown) => (isRecord(m) && m.auth !== undefined ? { ...m, auth: withUser(m.auth, m.mailbox) } : m)),
  };
}

const graphRouteSchema = z
  .strictObject({
    /** Graph's root, e.g. https://graph.microsoft.us; the client accepts any (tests, proxies). */
    baseUrl: z.url().default(CLOUD_PRESETS.worldwide.graphBaseUrl),
    saveToSentItems: z.boolean().default(true),
    /**
     * Messages too large for one sendMail request (about 3 MB of MIME): `smtp` sends them over
     * SMTP AUTH as the same mailbox (host, port and security of this block); absent: they fail
     * as too large. `upload` (a draft and an upload session) is not built yet.
     */
    largeMessages: z.enum(['smtp', 'upload']).optional(),
    /** The SMTP route's token scope for largeMessages: smtp (a preset sets it; default worldwide). */
    smtpScope: z
      .string()
      .regex(/^https:\/\/\S+\/\.default$/, { error: 'expected a resource scope ending in /.default, such as https://outlook.office365.com/.default' })
      .default(CLOUD_PRESETS.worldwide.smtpScope),
  })
  .optional();

const rateLimitFields = {
  perMinute: integerSchema(1),
  connections: integerSchema(1),
  /** Exchange Online counts recipients per mailbox over a rolling 24 hours. */
  recipientsPerDay: integerSchema(1),
};

/** One mailbox of a pool: its own address, the addresses it may send as, and what it does not share. */
const poolMailboxSchema = z.strictObject({
  mailbox: z.email(),
  /** Addresses this mailbox has SendAs on; mail sent as one of them goes only through mailboxes that list it. */
  sendAs: z.array(z.email()).default([]),
  route: z.enum(['smtp', 'graph']).optional(),
  /** Its own credentials; absent: upstream.auth with this mailbox as the user. */
  auth: upstreamAuthSchema.optional(),
  /** Its own limits; each absent one is upstream.rateLimit's. */
  rateLimit: z.strictObject({ perMinute: rateLimitFields.perMinute.optional(), connections: rateLimitFields.connections.optional(), recipientsPerDay: rateLimitFields.recipientsPerDay.optional() }).optional(),
});

const upstreamObjectSchema = z
  .strictObject({
    preset: z.enum(CLOUD_PRESET_NAMES).optional(),
    /** smtp: SMTP AUTH submission; graph: Microsoft Graph sendMail as auth.user (oauth2 only). */
    // Absent means smtp, so existing blocks parse to what they did.
    route: z.enum(['smtp', 'graph']).optional(),
    graph: graphRouteSchema,
    host: hostSchema,
    port: integerSchema(1, 65535).default(587),
    /** starttls never falls back to plain text when the server does not offer it. */
    security: z.enum(['starttls', 'tls', 'none']).default('starttls'),
    /** Extra trusted CA: a PEM file path or inline PEM. */
    ca: pemOrPathSchema.optional(),
    /** EHLO name; the delivery code picks one when absent. */
    name: hostSchema.optional(),
    auth: upstreamAuthSchema,
    rateLimit: z
      .strictObject({
        perMinute: rateLimitFields.perMinute.default(EXCHANGE_LIMITS.messagesPerMinute),
        connections: rateLimitFields.connections.default(EXCHANGE_LIMITS.connections),
        recipientsPerDay: rateLimitFields.recipientsPerDay.default(EXCHANGE_LIMITS.recipientsPerDay),
        /** Messages an hour to one recipient, over the whole pool (Exchange's receiving limit). */
        perRecipientPerHour: integerSchema(1).default(EXCHANGE_LIMITS.messagesPerHourPerRecipient),
      })
      .prefault({}),
    /** A pool: several mailboxes sharing this block (absent: auth.user alone, a pool of one). */
    mailboxes: z.array(poolMailboxSchema).min(1).optional(),
    /** Milliseconds. */
    timeouts: z
      .strictObject({
        connect: durationSchema.prefault('30s'),
        socket: durationSchema.prefault('2m'),
      })
      .prefault({}),
  })
  .superRefine(
    (upstream: unknown, ctx) => {
      checkPool(upstream, ctx);
      if (isRecord(upstream) && upstream.route === 'graph' && isRecord(upstream.auth) && upstream.auth.type !== 'oauth2') {
        ctx.addIssue({ code: 'custom', path: ['auth', 'type'], message: 'route graph needs oauth2 (an app with the Mail.Send application permission)' });
      }
      const largeMessages = isRecord(upstream) && isRecord(upstream.graph) ? upstream.graph.largeMessages : undefined;
      if (largeMessages !== undefined && isRecord(upstream) && upstream.route !== 'graph') {
        ctx.addIssue({ code: 'custom', path: ['graph', 'largeMessages'], message: 'applies to route graph only (route smtp sends every size Exchange Online takes)' });
      } else if (largeMessages === 'upload') {
        ctx.addIssue({
          code: 'custom',
          path: ['graph', 'largeMessages'],
          message: 'upload (a draft with an upload session, Mail.ReadWrite) is not built yet: use smtp (SMTP AUTH as auth.user for messages over about 3 MB), or leave it out and such messages fail as too large',
        });
      }
      if (!isRecord(upstream) || upstream.security !== 'none' || !isRecord(upstream.auth)) return;
      if (upstream.auth.type === 'oauth2' || upstream.auth.type === 'basic') {
        ctx.addIssue({
          code: 'custom',
          path: ['security'],
          message: `'none' would send the ${String(upstream.auth.type)} credentials in clear text; use starttls or tls`,
        });
      }
    },
    { when: () => true },
  );

/**
 * A mailbox listed twice would split one mailbox's limits in two; a sendAs address listed under
 * two mailboxes is allowed (either may send it, the less loaded one does).
 */
function checkPool(upstream: unknown, ctx: z.core.$RefinementCtx): void {
  if (!isRecord(upstream) || !Array.isArray(upstream.mailboxes)) return;
  const seen = new Map<string, number>();
  upstream.mailboxes.forEach((member: unknown, index) => {
    if (!isRecord(member) || typeof member.mailbox !== 'string') return;
    const key = member.mailbox.toLowerCase();
    const first = seen.get(key);
    if (first !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['mailboxes', index, 'mailbox'], message: `${quoteValue(member.mailbox)} is listed twice (also mailboxes[${first}]); list each mailbox once` });
    } else {
      seen.set(key, index);
    }
    const auth = isRecord(member.auth) ? member.auth : undefined;
    if (auth && typeof auth.user === 'string' && auth.user.toLowerCase() !== key) {
      ctx.addIssue({ code: 'custom', path: ['mailboxes', index, 'auth', 'user'], message: `must be the mailbox itself (${quoteValue(member.mailbox)}); leave it out` });
    }
    const route = member.route ?? upstream.route;
    if (route === 'graph' && member.route === 'graph' && upstream.route !== 'graph' && !auth) {
      ctx.addIssue({ code: 'custom', path: ['mailboxes', index, 'auth'], message: 'route graph on one mailbox needs its own oauth2 auth (the Graph scope differs from the SMTP one)' });
    }
    if (route === 'graph' && (auth ?? (isRecord(upstream.auth) ? upstream.auth : {})).type !== 'oauth2') {
      ctx.addIssue({ code: 'custom', path: ['mailboxes', index, 'route'], message: 'route graph needs oauth2 (an app with the Mail.Send application permission)' });
    }
  });
  const user = isRecord(upstream.auth) ? upstream.auth.user : undefined;
  if (typeof user === 'string' && !seen.has(user.toLowerCase())) {
    ctx.addIssue({ code: 'custom', path: ['auth', 'user'], message: `${quoteValue(user)} is not one of upstream.mailboxes; leave it out with a pool (each mailbox authenticates as itself)` });
  }
}

export const upstreamConfigSchema = z.preprocess((input) => fillPoolUsers(defaultGraphScope(applyPreset(input))), upstreamObjectSchema);

export type UpstreamConfig = z.output<typeof upstreamConfigSchema>;
export type UpstreamConfigInput = z.input<typeof upstreamObjectSchema>;
export type UpstreamAuthConfig = UpstreamConfig['auth'];
export type OAuth2AuthConfig = Extract<UpstreamAuthConfig, { type: 'oauth2' }>;
export type BasicAuthConfig = Extract<UpstreamAuthConfig, { type: 'basic' }>;

/**
 * For runtimes that hold the upstream block on its own (the cloud secret). `keyPrefix` names where
 * the block came from in the problems, e.g. `['upstream']`.
 */
export function parseUpstreamConfig(input: unknown, keyPrefix: readonly PropertyKey[] = []): ConfigParseResult<UpstreamConfig> {
  const result = upstreamConfigSchema.safeParse(input, { error: configErrorMap });
  return result.success ? { ok: true, config: result.data } : { ok: false, problems: formatConfigIssues(result.error.issues, keyPrefix) };
}

// ---------------------------------------------------------------------------------------------
// Masking

/**
 * Keys of the upstream block that hold secrets. A certificate key is masked even when it is a
 * path, so the rule does not depend on guessing what the value is.
 */
export const UPSTREAM_SECRET_PATHS: readonly (readonly string[])[] = [
  ['auth', 'clientSecret'],
  ['auth', 'password'],
  ['auth', 'certificate', 'key'],
];

/** Masks the block's secrets and those of each pool mailbox with credentials of its own. */
export function maskUpstreamInPlace(upstream: unknown): void {
  for (const path of UPSTREAM_SECRET_PATHS) maskPathInPlace(upstream, path);
  if (isRecord(upstream) && Array.isArray(upstream.mailboxes)) {
    for (const member of upstream.mailboxes) for (const path of UPSTREAM_SECRET_PATHS) maskPathInPlace(member, path);
  }
}

/** A deep copy safe to print or log. */
export function maskUpstreamSecrets(upstream: UpstreamConfig): unknown {
  const copy: unknown = structuredClone(upstream);
  maskUpstreamInPlace(copy);
  return copy;
}
