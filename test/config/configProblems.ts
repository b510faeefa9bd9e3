import assert from 'node:assert/strict';
import { loadConfigFromText } from '../../edge-agent/config/loadConfig.ts';
import { ConfigError } from '../../config-toolkit/configError.ts';

/** The problems a config text produces; fails the test when it loads cleanly. */
export function problemsOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    loadConfigFromText(text, { baseDir: '/srv/smarthost', env });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail('expected the configuration to be refused');
}

/** A minimal valid upstream block, as YAML lines to splice into a test file. */
export const OAUTH2_UPSTREAM = `
upstream:
  host: smtp.office365.com
  auth:
    type: oauth2
    tenantId: contoso.onmicrosoft.com
    clientId: aaaaaaaa-0000-0000-0000-000000000001
    clientSecret: s3cr3t
    user: relay@contoso.com
`;
