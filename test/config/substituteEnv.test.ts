import { inlineUpstream } from '../../edge-agent/config/agentConfigSchema.ts';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { substituteEnv } from '../../edge-agent/config/substituteEnv.ts';
import { problemsOf } from './configProblems.ts';
import { loadConfigFromText } from '../../edge-agent/config/loadConfig.ts';

describe('${ENV} substitution', () => {
  const env = { HOST: 'smtp.contoso.com', USER: 'relay', SECRET: 'p@ss: "word" ${NOT_EXPANDED}' };

  it('replaces whole values and parts of values, in mappings and lists', () => {
    const { value, problems } = substituteEnv({ a: '${HOST}', b: ['x-${USER}-y', 3, true, null], c: { d: '${USER}@${HOST}' } }, env);
    assert.deepEqual(problems, []);
    assert.deepEqual(value, { a: 'smtp.contoso.com', b: ['x-relay-y', 3, true, null], c: { d: 'relay@smtp.contoso.com' } });
  });

  it('keeps a substituted value as it is, without scanning it again', () => {
    assert.deepEqual(substituteEnv({ s: '${SECRET}' }, env).value, { s: 'p@ss: "word" ${NOT_EXPANDED}' });
  });

  it('turns $${ into a literal ${ and leaves other dollars alone', () => {
    assert.deepEqual(substituteEnv({ s: '$${HOST} costs $5 and $$' }, env).value, { s: '${HOST} costs $5 and $$' });
  });

  it('leaves keys alone', () => {
    assert.deepEqual(substituteEnv({ '${HOST}': 'v' }, env).value, { '${HOST}': 'v' });
  });

  it('names the key and the variable when a variable is unset, and reports malformed references', () => {
    const { problems } = substituteEnv({ a: { b: ['${MISSING}'] }, c: 'x ${UNCLOSED', d: '${not valid}' }, env);
    assert.deepEqual(problems, [
      { path: ['a', 'b', 0], message: 'environment variable MISSING is not set' },
      { path: ['c'], message: "unterminated '${' (write '$${' for a literal '${')" },
      { path: ['d'], message: "'${not valid}' is not a valid environment variable reference (expected ${NAME})" },
    ]);
  });

  it('treats a variable set to an empty string as set', () => {
    assert.deepEqual(substituteEnv({ a: 'x${EMPTY}y' }, { EMPTY: '' }), { value: { a: 'xy' }, problems: [] });
  });

  it('substitutes into the whole configuration, secrets included', () => {
    const config = loadConfigFromText('upstream:\n  host: ${HOST}\n  auth: { type: basic, user: "${USER}", password: "${SECRET}" }\n', { baseDir: '/', env });
    assert.deepEqual(inlineUpstream(config)?.auth, { type: 'basic', user: 'relay', password: env.SECRET });
    assert.equal(inlineUpstream(config)?.host, 'smtp.contoso.com');
  });

  it('reports a missing variable once, with its key, among the other problems', () => {
    const yaml = `
listen:
  port: 99999
upstream:
  host: smtp.office365.com
  auth:
    type: oauth2
    tenantId: contoso.onmicrosoft.com
    clientId: app
    clientSecret: "\${SMARTHOST_CLIENT_SECRET}"
    user: relay@contoso.com
`;
    assert.deepEqual(problemsOf(yaml), [
      'upstream.auth.clientSecret: environment variable SMARTHOST_CLIENT_SECRET is not set',
      'listen.port: must be at most 65535',
    ]);
  });
});
