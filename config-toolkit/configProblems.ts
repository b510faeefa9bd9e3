import * as z from 'zod';

/**
 * Config problems worded for someone editing a YAML (or JSON) file, as `key.path: message` lines.
 * Shared by every configuration the project reads: the agent's file and the upstream secret.
 */

export function isRecord(value: unknown): value is Record<string, unknown> {
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

export type ConfigParseResult<T> = { ok: true; config: T } | { ok: false; problems: string[] };

