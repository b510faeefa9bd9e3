import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { configErrorMap, describeConfigIssues, formatKeyPath } from '../../config-toolkit/configProblems.ts';
import { isInlinePem } from '../../config-toolkit/fieldSchemas.ts';
import { agentConfigSchema, type AgentConfig } from './agentConfigSchema.ts';
import { ConfigError } from '../../config-toolkit/configError.ts';
import { substituteEnv } from './substituteEnv.ts';

export { ConfigError } from '../../config-toolkit/configError.ts';

/** Looked up in the working directory when no path is given. */
export const DEFAULT_CONFIG_FILE = 'smarthost.yaml';

/** Where the Debian package and the container image put the configuration. */
export const PACKAGED_CONFIG_FILE = '/etc/smarthost/smarthost.yaml';

/** Keys of earlier versions: refused with their new name, so an old file is fixed rather than guessed at. */
const RENAMED_KEYS: Record<string, string> = { 'queue.sqs.idempotencyTable': 'queue.sqs.ledgerTable' };

export interface LoadConfigOptions {
  /** Explicit file (`--config`); relative to `cwd`. Must exist. */
  path?: string;
  /**
   * Without `path`: the files tried in order, relative to `cwd`; the first one that exists is
   * read, and with none every key is at its default. `[DEFAULT_CONFIG_FILE]` unless given.
   */
  defaultFiles?: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface LoadConfigFromTextOptions {
  env?: NodeJS.ProcessEnv;
  /** Relative paths in the config resolve against this directory. */
  baseDir: string;
  /** Named in the error message. */
  source?: string;
}

/**
 * The agent's configuration: `options.path`, else the first of `options.defaultFiles`
 * (`./smarthost.yaml`) present, else the embedded default (every key at its default: loopback
 * only, mail written to the outbox). Throws ConfigError listing every problem.
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<AgentConfig> {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const candidates = options.path === undefined ? (options.defaultFiles ?? [DEFAULT_CONFIG_FILE]) : [options.path];
  for (const candidate of candidates) {
    const file = path.resolve(cwd, candidate);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      const code = errorCode(error);
      if (code === 'ENOENT' && options.path === undefined) continue;
      throw new ConfigError([`${file}: ${code === 'ENOENT' ? 'file not found' : `cannot be read (${code ?? String(error)})`}`]);
    }
    return loadConfigFromText(text, { env, baseDir: path.dirname(file), source: file });
  }
  return loadConfigFromText('', { env, baseDir: cwd });
}

/** The same pipeline on text already in hand: YAML, `${ENV}` substitution, validation, path resolution. */
export function loadConfigFromText(text: string, options: LoadConfigFromTextOptions): AgentConfig {
  const { source, baseDir } = options;
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  if (document.errors.length > 0) {
    throw new ConfigError(
      document.errors.map((error) => {
        const { line, col } = lineCounter.linePos(error.pos[0]);
        return `line ${line}, column ${col}: ${error.message}`;
      }),
      source,
    );
  }

  let raw: unknown;
  try {
    raw = document.toJS();
  } catch (error) {
    // Only alias expansion beyond the library's limit (a "billion laughs" file) gets here.
    throw new ConfigError([`${formatKeyPath([])}: ${error instanceof Error ? error.message : String(error)}`], source);
  }
  // An empty file, or one with only comments, means every default.
  if (raw === null || raw === undefined) raw = {};

  const substituted = substituteEnv(raw, options.env ?? process.env);
  const problems = substituted.problems.map((problem) => `${formatKeyPath(problem.path)}: ${problem.message}`);
  // A key whose variable is missing already has its problem; what validation says about the
  // unsubstituted text would only be noise.
  const envProblemKeys = substituted.problems.map((problem) => formatKeyPath(problem.path));
  const coveredByEnvProblem = (key: string) =>
    envProblemKeys.some((envKey) => key === envKey || key.startsWith(`${envKey}.`) || key.startsWith(`${envKey}[`));

  const result = agentConfigSchema.safeParse(substituted.value, { error: configErrorMap });
  if (!result.success) {
    for (const { key, message } of describeConfigIssues(result.error.issues)) {
      if (!coveredByEnvProblem(key)) problems.push(`${key}: ${message === 'unknown key' && RENAMED_KEYS[key] ? `renamed to ${RENAMED_KEYS[key]}` : message}`);
    }
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems, source);
  return resolvePaths(result.data, baseDir);
}

/** Paths are relative to the config file, not to wherever the agent was started from. */
function resolvePaths(config: AgentConfig, baseDir: string): AgentConfig {
  const file = (value: string) => path.resolve(baseDir, value);
  const pemOrFile = (value: string) => (isInlinePem(value) ? value : file(value));
  const { listen, upstream, status } = config;
  return {
    ...config,
    ...(status?.tls && { status: { ...status, tls: { ...status.tls, cert: file(status.tls.cert), key: file(status.tls.key) } } }),
    listen: listen.tls ? { ...listen, tls: { ...listen.tls, cert: file(listen.tls.cert), key: file(listen.tls.key) } } : listen,
    spool: { ...config.spool, dir: file(config.spool.dir) },
    outbox: { ...config.outbox, dir: file(config.outbox.dir) },
    ...(upstream &&
      !('secretArn' in upstream) && {
      upstream: {
        ...upstream,
        ...(upstream.ca !== undefined && { ca: pemOrFile(upstream.ca) }),
        auth:
          upstream.auth.type === 'oauth2' && upstream.auth.certificate
            ? {
                ...upstream.auth,
                certificate: { key: pemOrFile(upstream.auth.certificate.key), cert: pemOrFile(upstream.auth.certificate.cert) },
              }
            : upstream.auth,
      },
    }),
  };
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}
