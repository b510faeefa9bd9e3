import assert from 'node:assert/strict';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTransport } from 'nodemailer';
import { NODE_VERSION } from '../../scripts/nodeBinary.mjs';
import { runCommand, startAgentCommand, type AgentProcess } from '../../testbed/helpers/agentProcess.ts';
import { makeTempDir } from '../../testbed/helpers/agentHarness.ts';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';
import { childProcessEnv } from '../../testbed/aws/awsTestEnv.ts';
import packageJson from '../../package.json' with { type: 'json' };
import { freePort } from '../../testbed/helpers/freePort.ts';

/**
 * The single executable the container image and the packages ship (npm run release), built for
 * this machine and run as a process: version, the relay taking a message, `smarthost healthcheck`
 * against its status listener, a clean stop, and cloud mode, whose code is a chunk of the embedded
 * bundle loaded only then.
 */

const RELEASE = join(import.meta.dirname, '../../scripts/release/release.mjs');
const ARCH = process.arch === 'arm64' ? 'arm64' : 'x64';


describe('single executable', () => {
  let dir: string;
  let executable: string;
  let agent: AgentProcess | undefined;
  // Only what the executable needs: no NODE_OPTIONS or tsx loader from the test runner.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

  before(async () => {
    dir = await makeTempDir('smarthost-release-');
    const built = await runCommand(process.execPath, [RELEASE, '--out', dir, ARCH], { env: process.env });
    assert.equal(built.code, 0, built.stderr);
    executable = join(dir, `smarthost-linux-${ARCH}`);
    assert.equal(built.stdout.trim(), executable);
  });
  after(async () => {
    agent?.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('prints its version and the Node.js it carries', async () => {
    const result = await runCommand(executable, ['--version'], { env });
    assert.deepEqual([result.code, result.stdout, result.stderr], [0, `smarthost ${packageJson.version} (Node.js v${NODE_VERSION})\n`, '']);
  });

  it('relays to the outbox, answers smarthost healthcheck from /readyz, and stops with exit code 0', async () => {
    const statusPort = await freePort();
    const config = join(dir, 'smarthost.yaml');
    await writeFile(config, JSON.stringify({
      listen: { host: '127.0.0.1', port: 0 },
      spool: { dir: join(dir, 'spool') },
      outbox: { dir: join(dir, 'outbox') },
      status: { host: '127.0.0.1', port: statusPort },
    }));
    agent = await startAgentCommand(executable, ['start', '--config', config], { env });

    const health = await runCommand(executable, ['healthcheck', '--config', config], { env });
    assert.deepEqual([health.code, health.stdout, health.stderr], [0, `healthy: http://127.0.0.1:${statusPort}/readyz answered 200 ready\n`, '']);

    const transport = createTransport({ host: '127.0.0.1', port: agent.port, secure: false, ignoreTLS: true });
    const info = await transport.sendMail({ envelope: { from: 'scanner@contoso.com', to: ['you@contoso.com'] }, raw: 'Subject: scan\r\n\r\nA scan.\r\n' });
    transport.close();
    const id = /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(info.response)?.[1];
    assert.ok(id, info.response);
    const outbox = join(dir, 'outbox');
    await pollUntil(async () => (await readdir(outbox).catch((): string[] => [])).includes(`${id}.eml`), 5_000, `${id}.eml in the outbox`);

    agent.child.kill('SIGTERM');
    assert.equal(await agent.exited, 0);
    agent = undefined;
    const down = await runCommand(executable, ['healthcheck', '--config', config], { env });
    assert.equal(down.code, 1);
    assert.equal(down.stderr, `unhealthy: http://127.0.0.1:${statusPort}/readyz: connect ECONNREFUSED 127.0.0.1:${statusPort}\n`);
  });

  it('starts in cloud mode: the forwarder and the AWS SDK, a chunk the local relay never loads, come from the embedded bundle', async () => {
    const config = join(dir, 'cloud.yaml');
    await writeFile(config, JSON.stringify({
      listen: { host: '127.0.0.1', port: 0 },
      spool: { dir: join(dir, 'cloud-spool') },
      queue: { kind: 'sqs', sqs: { queueUrl: 'http://127.0.0.1:9/000000000000/smarthost-mail', bucket: 'smarthost-bodies', region: 'us-east-1' } },
    }));
    // Every AWS endpoint is a loopback port nothing listens on: the hand-over waits, the relay runs.
    const cloud = await startAgentCommand(executable, ['start', '--config', config], { env: { ...childProcessEnv({}, env) } });
    try {
      const listening = cloud.lines.map((line) => JSON.parse(line) as { msg?: string; queue?: string }).find((record) => record.msg === 'smarthost listening');
      assert.equal(listening?.queue, 'sqs');
    } finally {
      cloud.child.kill('SIGTERM');
      assert.equal(await cloud.exited, 0);
    }
  });
});
