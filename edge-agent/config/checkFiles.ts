import { accessSync, constants } from 'node:fs';
import { isInlinePem } from '../../config-toolkit/fieldSchemas.ts';
import { inlineUpstream, type AgentConfig } from './agentConfigSchema.ts';
import { ConfigError } from '../../config-toolkit/configError.ts';

/**
 * The files a configuration names must be readable before the agent starts: a missing
 * certificate should stop `start` with the key's name, not fail the first STARTTLS or delivery.
 * Kept out of loadConfig so the example file, whose paths are placeholders, still validates.
 */
export function checkReferencedFiles(config: AgentConfig): void {
  const upstream = inlineUpstream(config);
  const files: [string, string | undefined][] = [
    ['listen.tls.cert', config.listen.tls?.cert],
    ['listen.tls.key', config.listen.tls?.key],
    ['upstream.ca', upstream?.ca],
    ['status.tls.cert', config.status?.tls?.cert],
    ['status.tls.key', config.status?.tls?.key],
  ];
  const auth = upstream?.auth;
  if (auth?.type === 'oauth2' && auth.certificate) {
    files.push(['upstream.auth.certificate.cert', auth.certificate.cert], ['upstream.auth.certificate.key', auth.certificate.key]);
  }
  const problems: string[] = [];
  for (const [key, path] of files) {
    if (path === undefined || isInlinePem(path)) {
      continue;
    }
    try {
      accessSync(path, constants.R_OK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      problems.push(`${key}: cannot read ${path} (${code === 'ENOENT' ? 'no such file' : code ?? 'error'})`);
    }
  }
  if (problems.length > 0) {
    throw new ConfigError(problems);
  }
}
