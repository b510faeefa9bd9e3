import * as z from 'zod';
import { parseDuration } from './retryPolicy.ts';

/**
 * The `upstream` block: where and how delivered mail is submitted. The agent reads it from YAML and
 * the cloud functions read the same JSON from Secrets Manager, so this file depends on nothing of
 * either runtime. Problems are reported as `key.path: message` strings, the same format everywhere.
 */

export const SECRET_MASK = '********';

/** Inline PEM is told apart from a file path by its armour line; paths never start with dashes. */
export function isInlinePem(value: string): boolean {
  return value.trimStart().startsWith('-----BEGIN');
}

// ---------------------------------------------------------------------------------------------
// Messages and key paths

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
};

/**
 * Names only the type: a value in the wrong place may be a secret (an unquoted numeric password
 * is a number), and the key path already tells the operator where to look.
 */
function describeType(value: unknown): string {
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'boolean') return 'true or false';
  return `a ${typeof value}`;
}

/** For values that are never secret (enum choices, sizes, durations, addresses). */
export function quoteValue(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value !== 'string') return describeType(value);
  return value.length > 60 ? `'${value.slice(0, 57)}...'` : `'${value}'`;
}

/**
 * Messages worded for someone editing a YAML file. Schema-level `error` options take precedence,
 * so fields that need a specific wording (such as "required when type is oauth2") set their own.
 */
export const configErrorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'required';
      if (issue.input === null) return 'is empty; give a value or remove the key';
      if (issue.expected === 'int' && typeof issue.input === 'number') return 'must be a whole number';
      return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${describeType(issue.input)}`;
    case 'invalid_value':
      return `expected ${issue.values.map((v) => String(v)).join(' | ')}, got ${quoteValue(issue.input)}`;
    case 'too_small':
      if (issue.origin === 'string') return 'must not be empty';
      if (issue.origin === 'array') return Number(issue.minimum) <= 1 ? 'must not be empty' : `must list at least ${String(issue.minimum)} entries`;
      return issue.inclusive ? `must be at least ${String(issue.minimum)}` : `must be greater than ${String(issue.minimum)}`;
    case 'too_big':
      return issue.inclusive ? `must be at most ${String(issue.maximum)}` : `must be less than ${String(issue.maximum)}`;
    case 'invalid_format':
      if (issue.format === 'email') return `expected an email address, got ${quoteValue(issue.input)}`;
      return undefined;
    default:
      return undefined;
  }
};

/** `['clients', 1, 'address']` → `clients[1].address`; odd keys are quoted so the path stays readable. */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && /^[A-Za-z_$][\w$-]*$/.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out || '(top level)';
}

export interface ConfigProblem {
  /** `clients[1].address` */
  key: string;
  message: string;
}

/** One problem per issue; each unknown key gets its own so typos stand out. */
export function describeConfigIssues(issues: readonly z.core.$ZodIssue[], keyPrefix: readonly PropertyKey[] = []): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of issues) {
    const path = [...keyPrefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push({ key: formatKeyPath([...path, key]), message: 'unknown key' });
    } else {
      problems.push({ key: formatKeyPath(path), message: issue.message });
    }
  }
  return problems;
}

/** `key.path: message` lines. */
export function formatConfigIssues(issues: readonly z.core.$ZodIssue[], keyPrefix: readonly PropertyKey[] = []): string[] {
  return describeConfigIssues(issues, keyPrefix).map(({ key, message }) => `${key}: ${message}`);
}

// ---------------------------------------------------------------------------------------------
// Reusable field schemas

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

export const upstreamConfigSchema = z
  .strictObject({
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
        perMinute: integerSchema(1).default(30),
        connections: integerSchema(1).default(3),
      })
      .prefault({}),
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

export type UpstreamConfig = z.output<typeof upstreamConfigSchema>;
export type UpstreamConfigInput = z.input<typeof upstreamConfigSchema>;
export type UpstreamAuthConfig = UpstreamConfig['auth'];
export type OAuth2AuthConfig = Extract<UpstreamAuthConfig, { type: 'oauth2' }>;
export type BasicAuthConfig = Extract<UpstreamAuthConfig, { type: 'basic' }>;

export type ConfigParseResult<T> = { ok: true; config: T } | { ok: false; problems: string[] };

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

/** Replaces the value at `path` inside `target` (which the caller owns) when it is present. */
export function maskPathInPlace(target: unknown, path: readonly string[]): void {
  let node: unknown = target;
  for (const key of path.slice(0, -1)) {
    if (!isRecord(node)) return;
    node = node[key];
  }
  const last = path[path.length - 1];
  if (last !== undefined && isRecord(node) && node[last] !== undefined) node[last] = SECRET_MASK;
}

/** A deep copy safe to print or log. */
export function maskUpstreamSecrets(upstream: UpstreamConfig): unknown {
  const copy: unknown = structuredClone(upstream);
  for (const path of UPSTREAM_SECRET_PATHS) maskPathInPlace(copy, path);
  return copy;
}
