import { inlineUpstream } from '../../edge-agent/config/agentConfigSchema.ts';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as z from 'zod';
import { agentConfigSchema, type AgentConfig } from '../../edge-agent/config/agentConfigSchema.ts';
import { loadConfig, loadConfigFromText } from '../../edge-agent/config/loadConfig.ts';
import { ConfigError } from '../../config-toolkit/configError.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const exampleEnv = { HELPDESK_SMTP_PASSWORD: 'helpdesk-pass-123', SMARTHOST_CLIENT_SECRET: 'client-secret-456' };

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const MIB = 1024 * 1024;

function defaultsIn(dir: string): AgentConfig {
  return {
    listen: {
      host: '127.0.0.1',
      port: 2525,
      maxMessageSize: 35 * MIB,
      maxRecipients: 500,
      bareNewlines: 'normalize',
      nulBytes: 'strip',
      maxConnections: 100,
      maxConnectionsPerClient: 20,
      idleTimeout: 5 * MINUTE,
    },
    clients: [],
    senders: {},
    spool: { dir: path.join(dir, 'data/spool'), historyRetention: 30 * 24 * HOUR, failedRetention: 30 * 24 * HOUR },
    outbox: { dir: path.join(dir, 'data/outbox'), retention: 14 * 24 * HOUR },
    queue: { kind: 'local' },
    retry: { schedule: [MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR, 4 * HOUR], maxAge: 48 * HOUR },
    log: { level: 'info' },
    notices: { undeliverableDomains: [], notify: 'none', heldAfter: 4 * HOUR },
  };
}

async function rejection(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected loadConfig to reject');
}

describe('loadConfig', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'smarthost-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads the example file into normalized values, paths resolved against its directory', async () => {
    const config = await loadConfig({ path: 'smarthost.example.yaml', cwd: repoRoot, env: exampleEnv });
    const expected: AgentConfig = {
      listen: {
        host: '127.0.0.1',
        port: 2525,
        maxMessageSize: 35 * MIB,
        maxRecipients: 500,
        bareNewlines: 'normalize',
        nulBytes: 'strip',
        tls: { cert: path.join(repoRoot, 'certs/agent.crt'), key: path.join(repoRoot, 'certs/agent.key'), minVersion: 'TLSv1.2' },
        maxConnections: 100,
        maxConnectionsPerClient: 20,
        idleTimeout: 5 * MINUTE,
      },
      clients: [
        { name: 'fax', address: '10.100.102.3', sendAs: 'FaxService@contoso.com', acceptAnyAuth: false },
        { name: 'helpdesk', address: '10.100.102.0/28', auth: { username: 'helpdesk', password: 'helpdesk-pass-123' }, acceptAnyAuth: false },
      ],
      senders: { allowedDomains: ['contoso.com'] },
      spool: { dir: path.join(repoRoot, 'data/spool'), maxBytes: 10 * 1024 * MIB, historyRetention: 30 * 24 * HOUR, failedRetention: 30 * 24 * HOUR },
      outbox: { dir: path.join(repoRoot, 'data/outbox'), retention: 14 * 24 * HOUR },
      queue: { kind: 'local' },
      upstream: {
        host: 'smtp.office365.com',
        port: 587,
        security: 'starttls',
        ca: path.join(repoRoot, 'certs/extra-ca.pem'),
        name: 'relay.contoso.com',
        auth: {
          type: 'oauth2',
          tenantId: '11111111-2222-3333-4444-555555555555',
          clientId: 'aaaaaaaa-0000-0000-0000-000000000001',
          clientSecret: 'client-secret-456',
          authority: 'https://login.microsoftonline.com',
          scope: 'https://outlook.office365.com/.default',
          user: 'relay@contoso.com',
        },
        rateLimit: { perMinute: 30, connections: 3, recipientsPerDay: 10_000, perRecipientPerHour: 3_600 },
        timeouts: { connect: 30_000, socket: 2 * MINUTE },
      },
      retry: { schedule: [MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR, 4 * HOUR], maxAge: 48 * HOUR },
      log: { level: 'info' },
      notices: { undeliverableDomains: [], notify: 'none', heldAfter: 4 * HOUR },
    };
    assert.deepEqual(config, expected);
  });

  it('names both unset variables of the example file together', async () => {
    const error = await rejection(loadConfig({ path: 'smarthost.example.yaml', cwd: repoRoot, env: {} }));
    assert.deepEqual(error.problems, [
      'clients[1].auth.password: environment variable HELPDESK_SMTP_PASSWORD is not set',
      'upstream.auth.clientSecret: environment variable SMARTHOST_CLIENT_SECRET is not set',
    ]);
    assert.match(error.message, /smarthost\.example\.yaml \(2 problems\):\n {2}clients\[1\]\.auth\.password: .+\n {2}upstream\.auth\.clientSecret: /);
  });

  it('documents every key of the schema in the example file', async () => {
    const example = await readFile(path.join(repoRoot, 'smarthost.example.yaml'), 'utf8');
    const keys = new Set<string>();
    const collect = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(collect);
      if (typeof node !== 'object' || node === null) return;
      for (const [field, value] of Object.entries(node)) {
        if (field === 'properties' && typeof value === 'object' && value !== null) Object.keys(value).forEach((key) => keys.add(key));
        collect(value);
      }
    };
    collect(z.toJSONSchema(agentConfigSchema, { io: 'input', unrepresentable: 'any' }));
    assert.ok(keys.size > 40, `only ${keys.size} keys found in the schema`);
    const undocumented = [...keys].filter((key) => !new RegExp(`(^|[\\s{#,])${key}:`, 'm').test(example));
    assert.deepEqual(undocumented, []);
  });

  it('uses every default when no file is given and ./smarthost.yaml is absent', async () => {
    const config = await loadConfig({ cwd: dir, env: {} });
    assert.deepEqual(config, defaultsIn(dir));
  });

  it('reads ./smarthost.yaml from the working directory when present', async () => {
    const cwd = path.join(dir, 'with-default-file');
    await mkdir(cwd);
    await writeFile(path.join(cwd, 'smarthost.yaml'), 'listen:\n  port: 25\n');
    const config = await loadConfig({ cwd, env: {} });
    assert.equal(config.listen.port, 25);
    assert.equal(config.spool.dir, path.join(cwd, 'data/spool'));
  });

  it('reads the first of defaultFiles that exists, relative paths against that file', async () => {
    const cwd = path.join(dir, 'with-packaged-file');
    await mkdir(path.join(cwd, 'etc-smarthost'), { recursive: true });
    await writeFile(path.join(cwd, 'etc-smarthost', 'smarthost.yaml'), 'listen:\n  port: 2626\nspool:\n  dir: spool\n');
    await writeFile(path.join(cwd, 'smarthost.yaml'), 'listen:\n  port: 25\n');
    const config = await loadConfig({ cwd, env: {}, defaultFiles: ['missing.yaml', path.join(cwd, 'etc-smarthost', 'smarthost.yaml'), 'smarthost.yaml'] });
    assert.equal(config.listen.port, 2626);
    assert.equal(config.spool.dir, path.join(cwd, 'etc-smarthost', 'spool'));
    assert.deepEqual(await loadConfig({ cwd, env: {}, defaultFiles: ['missing.yaml'] }), defaultsIn(cwd));
  });

  it('refuses a renamed key with its new name', () => {
    const yaml = 'queue:\n  kind: sqs\n  sqs:\n    queueUrl: https://sqs.eu-west-1.amazonaws.com/123456789012/mail\n    bucket: mail-bodies\n    idempotencyTable: smarthost-ledger\n';
    assert.throws(
      () => loadConfigFromText(yaml, { baseDir: dir, env: {} }),
      (error: unknown) => error instanceof ConfigError && error.problems.includes('queue.sqs.idempotencyTable: renamed to queue.sqs.ledgerTable'),
    );
  });

  it('treats an empty file and a file of comments as all defaults', async () => {
    assert.deepEqual(loadConfigFromText('', { baseDir: dir, env: {} }), defaultsIn(dir));
    assert.deepEqual(loadConfigFromText('# nothing set yet\n\n', { baseDir: dir, env: {} }), defaultsIn(dir));
  });

  it('refuses an explicit path that does not exist', async () => {
    const error = await rejection(loadConfig({ path: 'missing.yaml', cwd: dir, env: {} }));
    assert.deepEqual(error.problems, [`${path.join(dir, 'missing.yaml')}: file not found`]);
  });

  it('resolves relative paths against the config file directory, not the working directory', async () => {
    const configDir = path.join(dir, 'etc');
    await mkdir(configDir);
    await writeFile(
      path.join(configDir, 'relay.yaml'),
      [
        'listen:',
        '  tls: { cert: certs/agent.crt, key: /abs/agent.key }',
        'spool: { dir: ../var/spool }',
        'outbox: { dir: ./outbox }',
        'upstream:',
        '  host: smtp.office365.com',
        '  ca: ca.pem',
        '  auth:',
        '    type: oauth2',
        '    tenantId: contoso.onmicrosoft.com',
        '    clientId: app',
        '    user: relay@contoso.com',
        '    certificate:',
        '      cert: app.crt',
        '      key: |',
        '        -----BEGIN PRIVATE KEY-----',
        '        MIIEv',
        '        -----END PRIVATE KEY-----',
      ].join('\n'),
    );
    const config = await loadConfig({ path: 'etc/relay.yaml', cwd: dir, env: {} });
    assert.equal(config.listen.tls?.cert, path.join(configDir, 'certs/agent.crt'));
    assert.equal(config.listen.tls?.key, '/abs/agent.key');
    assert.equal(config.spool.dir, path.join(dir, 'var/spool'));
    assert.equal(config.outbox.dir, path.join(configDir, 'outbox'));
    assert.equal(inlineUpstream(config)?.ca, path.join(configDir, 'ca.pem'));
    const auth = inlineUpstream(config)?.auth;
    assert.equal(auth?.type, 'oauth2');
    assert.equal(auth.certificate?.cert, path.join(configDir, 'app.crt'));
    assert.equal(auth.certificate?.key, '-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----\n');
  });

  it('reports YAML syntax errors with line and column', () => {
    assert.throws(
      () => loadConfigFromText('listen:\n  port: 2525\n  port: 25\n', { baseDir: dir, env: {}, source: 'relay.yaml' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.problems, ['line 3, column 3: Map keys must be unique']);
        assert.equal(error.message, 'Invalid configuration in relay.yaml (1 problem):\n  line 3, column 3: Map keys must be unique');
        return true;
      },
    );
  });

  it('refuses a file whose top level is not a mapping', () => {
    assert.throws(
      () => loadConfigFromText('- listen\n', { baseDir: dir, env: {} }),
      (error: unknown) => error instanceof ConfigError && error.problems.join() === '(top level): expected a mapping, got a list',
    );
  });
});
