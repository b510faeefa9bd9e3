import { inlineUpstream } from '../../edge-agent/config/agentConfigSchema.ts';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfigFromText } from '../../edge-agent/config/loadConfig.ts';
import { OAUTH2_UPSTREAM, problemsOf } from './configProblems.ts';

const load = (text: string, env: NodeJS.ProcessEnv = {}) => loadConfigFromText(text, { baseDir: '/srv/smarthost', env });

describe('agent configuration validation', () => {
  it('reports every problem of a file together, each naming its key', () => {
    const problems = problemsOf(`
listen:
  hots: 0.0.0.0
  port: 70000
  maxMessageSize: 35 megabytes
  idleTimeout: 300
  bareNewlines: strip
clients:
  - name: fax
    address: 10.100.102.3
  - name: scanner
    address: 10.100.102.300
queue:
  kind: sqs
log:
  level: verbose
`);
    assert.deepEqual(problems, [
      'listen.port: must be at most 65535',
      "listen.maxMessageSize: expected a size such as 35MB, 512KB or a number of bytes, got '35 megabytes'",
      "listen.bareNewlines: expected normalize | reject, got 'strip'",
      'listen.idleTimeout: expected a duration such as 30s, 5m, 2d or 1h30m, got 300',
      'listen.hots: unknown key',
      "clients[1].address: expected an IP address or CIDR range, IPv4 or IPv6, such as 10.0.0.5 or 10.0.0.0/24, got '10.100.102.300'",
      'queue.sqs: required when kind is sqs (queueUrl and bucket)',
      "log.level: expected fatal | error | warn | info | debug | trace | silent, got 'verbose'",
    ]);
  });

  it('names each unknown key, at any depth', () => {
    assert.deepEqual(problemsOf('lisen: {}\nspool:\n  dirr: /var/spool\nclients:\n  - { name: a, address: 127.0.0.1, sendas: a@b.com }\n'), [
      'clients[0].sendas: unknown key',
      'spool.dirr: unknown key',
      'lisen: unknown key',
    ]);
  });

  describe('clients', () => {
    it('accepts IPv4 and IPv6 addresses and ranges', () => {
      const config = load(`
clients:
  - { name: a, address: 10.0.0.5 }
  - { name: b, address: 10.0.0.0/8 }
  - { name: c, address: "::1" }
  - { name: d, address: "2001:db8::/32" }
  - { name: e, address: 0.0.0.0/0 }
`);
      assert.deepEqual(
        config.clients.map((client) => client.address),
        ['10.0.0.5', '10.0.0.0/8', '::1', '2001:db8::/32', '0.0.0.0/0'],
      );
    });

    it('refuses bad addresses and CIDR ranges with the reason', () => {
      assert.deepEqual(
        problemsOf(`
clients:
  - { name: a, address: 10.0.0.0/33 }
  - { name: b, address: 10.100.102.5/28 }
  - { name: c, address: "2001:db8::/129" }
  - { name: d, address: fax.contoso.local }
  - { name: e, address: 10.1 }
  - { name: f, address: 0x0a.0.0.1 }
`),
        [
          "clients[0].address: prefix length must be 0 to 32, got '10.0.0.0/33'",
          "clients[1].address: '10.100.102.5/28' has host bits set; did you mean 10.100.102.0/28?",
          "clients[2].address: prefix length must be 0 to 128, got '2001:db8::/129'",
          "clients[3].address: expected an IP address or CIDR range, IPv4 or IPv6, such as 10.0.0.5 or 10.0.0.0/24, got 'fax.contoso.local'",
          'clients[4].address: expected an IP address or CIDR range, IPv4 or IPv6, such as 10.0.0.5 or 10.0.0.0/24, got 10.1',
          "clients[5].address: expected an IP address or CIDR range, IPv4 or IPv6, such as 10.0.0.5 or 10.0.0.0/24, got '0x0a.0.0.1'",
        ],
      );
    });

    it('requires unique names, and auth and acceptAnyAuth are exclusive', () => {
      assert.deepEqual(
        problemsOf(`
clients:
  - { name: fax, address: 10.0.0.1 }
  - name: fax
    address: 10.0.0.2
    auth: { username: fax, password: pw }
    acceptAnyAuth: true
  - { address: 10.0.0.3, sendAs: not-an-address }
`),
        [
          'clients[1].acceptAnyAuth: cannot be combined with auth: a client either checks its credentials or accepts any',
          'clients[2].name: required',
          "clients[2].sendAs: expected an email address, got 'not-an-address'",
          "clients[1].name: duplicate name 'fax' (also clients[0].name)",
        ],
      );
    });

    it('defaults acceptAnyAuth to false and reads the true/false spelling of an env value', () => {
      const config = load('clients:\n  - { name: printer, address: 10.0.0.9, acceptAnyAuth: "${ANY}" }\n', { ANY: 'true' });
      assert.equal(config.clients[0]?.acceptAnyAuth, true);
      assert.equal(load('clients:\n  - { name: printer, address: 10.0.0.9 }\n').clients[0]?.acceptAnyAuth, false);
    });
  });

  it('lowercases sender domains and refuses an empty list or an address', () => {
    assert.deepEqual(load('senders:\n  allowedDomains: [Contoso.COM, fabrikam.com]\n').senders.allowedDomains, ['contoso.com', 'fabrikam.com']);
    assert.deepEqual(problemsOf('senders:\n  allowedDomains: []\n'), [
      'senders.allowedDomains: must list at least one domain (remove the key to allow any sender domain)',
    ]);
    assert.deepEqual(problemsOf('senders:\n  allowedDomains: ["@contoso.com"]\n'), [
      "senders.allowedDomains[0]: expected a domain such as contoso.com, got '@contoso.com'",
    ]);
  });

  it('parses sizes to bytes and durations to milliseconds, refusing bad and zero values', () => {
    const config = load('listen: { maxMessageSize: 10MB, idleTimeout: 1h30m }\nspool: { maxBytes: 2048 }\nretry: { schedule: [30s, 2m], maxAge: 1d }\n');
    assert.equal(config.listen.maxMessageSize, 10 * 1024 * 1024);
    assert.equal(config.listen.idleTimeout, 90 * 60_000);
    assert.equal(config.spool.maxBytes, 2048);
    assert.deepEqual(config.retry, { schedule: [30_000, 120_000], maxAge: 86_400_000 });

    assert.deepEqual(problemsOf('spool: { maxBytes: lots }\nretry: { schedule: [1m, 0s, soon], maxAge: 2 days }\n'), [
      "spool.maxBytes: expected a size such as 35MB, 512KB or a number of bytes, got 'lots'",
      'retry.schedule[1]: must be longer than zero',
      "retry.schedule[2]: expected a duration such as 30s, 5m, 2d or 1h30m, got 'soon'",
      "retry.maxAge: expected a duration such as 30s, 5m, 2d or 1h30m, got '2 days'",
    ]);
    assert.deepEqual(problemsOf('retry: { schedule: [] }\nlisten: { maxMessageSize: 0 }\n'), [
      'listen.maxMessageSize: must be greater than zero',
      'retry.schedule: must not be empty',
    ]);
  });

  it('reads numbers given as text through an env variable', () => {
    assert.equal(load('listen: { port: "${PORT}" }\n', { PORT: '25' }).listen.port, 25);
    assert.deepEqual(problemsOf('listen: { port: "${PORT}" }\n', { PORT: 'twenty-five' }), ['listen.port: expected a number, got a string']);
  });

  it('refuses a key left without a value instead of falling back to its default', () => {
    assert.deepEqual(problemsOf('upstream:\nclients:\n'), [
      'clients: is empty; give a value or remove the key',
      'upstream: is empty; give a value or remove the key',
    ]);
  });

  it('refuses inline PEM for the listener, whose key would otherwise be printed', () => {
    assert.deepEqual(problemsOf('listen:\n  tls: { cert: a.crt, key: "-----BEGIN PRIVATE KEY-----\\nx\\n-----END PRIVATE KEY-----" }\n'), [
      'listen.tls.key: expected a file path (inline PEM is accepted only under upstream)',
    ]);
    assert.deepEqual(problemsOf('listen:\n  tls: { cert: a.crt }\n'), ['listen.tls.key: required']);
  });

  describe('upstream', () => {
    it('fills the upstream defaults', () => {
      const upstream = load(OAUTH2_UPSTREAM).upstream;
      assert.deepEqual(upstream, {
        host: 'smtp.office365.com',
        port: 587,
        security: 'starttls',
        auth: {
          type: 'oauth2',
          tenantId: 'contoso.onmicrosoft.com',
          clientId: 'aaaaaaaa-0000-0000-0000-000000000001',
          clientSecret: 's3cr3t',
          authority: 'https://login.microsoftonline.com',
          scope: 'https://outlook.office365.com/.default',
          user: 'relay@contoso.com',
        },
        rateLimit: { perMinute: 30, connections: 3, recipientsPerDay: 10_000, perRecipientPerHour: 3_600 },
        timeouts: { connect: 30_000, socket: 120_000 },
      });
    });

    it('names the missing oauth2 fields', () => {
      assert.deepEqual(problemsOf('upstream:\n  host: smtp.office365.com\n  auth:\n    type: oauth2\n    clientId: app\n    clientSecret: s\n    user: relay@contoso.com\n'), [
        'upstream.auth.tenantId: required when type is oauth2',
      ]);
      assert.deepEqual(problemsOf('upstream:\n  host: smtp.office365.com\n  auth: { type: oauth2 }\n'), [
        'upstream.auth.tenantId: required when type is oauth2',
        'upstream.auth.clientId: required when type is oauth2',
        'upstream.auth.user: required when type is oauth2',
        'upstream.auth.clientSecret: required when type is oauth2, unless certificate is given',
      ]);
    });

    it('wants exactly one of clientSecret and certificate, an https authority and an email user', () => {
      assert.deepEqual(
        problemsOf(`
upstream:
  host: smtp.office365.com
  auth:
    type: oauth2
    tenantId: contoso.onmicrosoft.com
    clientId: app
    clientSecret: s
    certificate: { key: app.key, cert: app.crt }
    authority: http://login.example
    user: relay
`),
        [
          "upstream.auth.authority: expected an https:// URL such as https://login.microsoftonline.com, got 'http://login.example'",
          "upstream.auth.user: expected an email address, got 'relay'",
          'upstream.auth.certificate: give either clientSecret or certificate, not both',
        ],
      );
    });

    it('names an unknown or missing auth type, and basic credentials', () => {
      assert.deepEqual(problemsOf('upstream:\n  host: h\n  auth: { type: kerberos }\n'), ["upstream.auth.type: expected oauth2 | basic | none, got 'kerberos'"]);
      assert.deepEqual(problemsOf('upstream:\n  host: h\n  auth: { user: u }\n'), ['upstream.auth.type: required: oauth2 | basic | none']);
      assert.deepEqual(problemsOf('upstream:\n  host: h\n  auth: { type: basic, user: u }\n'), ['upstream.auth.password: required when type is basic']);
      assert.deepEqual(problemsOf('upstream:\n  auth: { type: none }\n'), ['upstream.host: required']);
    });

    it('never sends credentials over a connection without TLS', () => {
      assert.deepEqual(problemsOf('upstream:\n  host: h\n  security: none\n  auth: { type: basic, user: u, password: p }\n'), [
        "upstream.security: 'none' would send the basic credentials in clear text; use starttls or tls",
      ]);
      assert.equal(inlineUpstream(load('upstream:\n  host: h\n  port: 25\n  security: none\n  auth: { type: none }\n'))?.security, 'none');
    });

    it('checks rate limits and timeouts', () => {
      assert.deepEqual(problemsOf(`${OAUTH2_UPSTREAM}  rateLimit: { perMinute: 0, connections: 1.5 }\n  timeouts: { connect: fast }\n`), [
        'upstream.rateLimit.perMinute: must be at least 1',
        'upstream.rateLimit.connections: must be a whole number',
        "upstream.timeouts.connect: expected a duration such as 30s, 5m, 2d or 1h30m, got 'fast'",
      ]);
    });
  });
});

describe('queue.sqs.worker (timings of smarthost worker)', () => {
  const SQS = `
queue:
  kind: sqs
  sqs:
    queueUrl: https://sqs.eu-west-1.amazonaws.com/123456789012/smarthost-mail
    bucket: smarthost-bodies
`;

  it('defaults to a 20 s long poll, a 6 minute visibility timeout and lease, 5 s after errors', () => {
    assert.deepEqual(load(SQS).queue.sqs?.worker, { pollWait: 20_000, visibilityTimeout: 360_000, lease: 360_000, errorBackoff: 5_000 });
  });

  it('takes shorter timings', () => {
    const worker = load(`${SQS}    worker: { pollWait: 1s, visibilityTimeout: 5s, lease: 3s, errorBackoff: 250ms }\n`).queue.sqs?.worker;
    assert.deepEqual(worker, { pollWait: 1_000, visibilityTimeout: 5_000, lease: 3_000, errorBackoff: 250 });
  });

  it('refuses what SQS would refuse, and a lease longer than the visibility timeout, naming the key', () => {
    assert.deepEqual(problemsOf(`${SQS}    worker: { pollWait: 30s, visibilityTimeout: 13h }\n`), [
      'queue.sqs.worker.pollWait: must be at most 20s (the SQS maximum)',
      'queue.sqs.worker.visibilityTimeout: must be between 1s and 12h (SQS limits)',
    ]);
    assert.deepEqual(problemsOf(`${SQS}    worker: { visibilityTimeout: 1m, lease: 2m }\n`), [
      'queue.sqs.worker.lease: must not be longer than visibilityTimeout (a redelivered message would find its claim still held)',
    ]);
  });
});
