// Proves a built image (scripts/container/buildImage.sh) end to end against the fake Exchange
// Online on loopback, with the image's own HEALTHCHECK, user and volume:
//   node --import tsx scripts/container/checkImage.ts [TAG]      (default smarthost:local-<this machine's arch>)
// 1. Container A, with a config mounted read-only whose upstream port has nothing listening,
//    accepts a message (250), keeps it in the spool on the volume and stops cleanly.
// 2. Container B, same volume, upstream the fake: delivers A's message, then one sent to it,
//    with the client secret taken from an environment variable (and never logged).
// 3. B turns healthy through `smarthost healthcheck` (/readyz on the status listener), runs as
//    65532 with a read-only root, every capability dropped, and the spool files are 65532's.
// 4. The image's built-in config, on Docker's bridge with the port published, answers a stranger
//    554 5.7.1 (loopback only until a config names the devices).
// Containers use --network host so the fakes on the host's loopback are reachable. Prints one
// line per check; exits 1 at the first that fails. Needs a running Docker daemon (root).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTransport } from 'nodemailer';
import { CLIENT_SECRET, startExchangeOnlineRig } from '../../testbed/helpers/exchangeOnlineRig.ts';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';
import { freePort } from '../../testbed/helpers/freePort.ts';

const run = promisify(execFile);
const TAG = process.argv[2] ?? `smarthost:local-${process.arch === 'x64' ? 'amd64' : process.arch}`;
const NAME = `smarthost-check-${process.pid}`;
/** Each wait: generous, as an image of another architecture runs under qemu-user, several times slower. */
const WAIT_MS = 60_000;
/** The user the Dockerfile names (distroless's nonroot). */
const IMAGE_USER = 65532;

async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}


function ok(text: string): void {
  process.stdout.write(`ok - ${text}\n`);
}

/** The first reply line a server sends to a new connection. */
function greeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setEncoding('latin1');
    socket.once('data', (line: string) => {
      socket.destroy();
      resolve(line.trim());
    });
    socket.once('error', reject);
  });
}

async function send(port: number, subject: string): Promise<string> {
  const transport = createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
  try {
    const info = await transport.sendMail({
      envelope: { from: 'scanner@contoso.com', to: ['you@contoso.com'] },
      raw: `From: scanner@contoso.com\r\nTo: you@contoso.com\r\nSubject: ${subject}\r\n\r\nA scan.\r\n`,
    });
    return info.response;
  } finally {
    transport.close();
  }
}

const rig = await startExchangeOnlineRig();
const dir = await mkdtemp(join(tmpdir(), 'smarthost-image-'));
const volume = `${NAME}-spool`;
const containers: string[] = [];

async function startContainer(suffix: string, configFile: string): Promise<string> {
  const name = `${NAME}-${suffix}`;
  containers.push(name);
  await docker(
    'run', '-d', '--name', name, '--network', 'host',
    '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges=true',
    // The image's HEALTHCHECK command, asked every second instead of every 30 s.
    '--health-interval', '1s',
    '-v', `${configFile}:/etc/smarthost/smarthost.yaml:ro`,
    '-v', `${volume}:/var/lib/smarthost`,
    '-e', 'SMARTHOST_CLIENT_SECRET',
    TAG,
  );
  return name;
}

async function waitForLog(name: string, text: string): Promise<string> {
  let logs = '';
  await pollUntil(async () => {
    const { stdout, stderr } = await run('docker', ['logs', name]);
    logs = stdout + stderr;
    return logs.includes(text);
  }, WAIT_MS, `"${text}" in the logs of ${name}`, 250);
  return logs;
}

try {
  const smtpPort = await freePort();
  const statusPort = await freePort();
  const deadPort = await freePort();
  const config = (upstreamPort: number) => ({
    listen: { host: '127.0.0.1', port: smtpPort },
    clients: [{ name: 'check', address: '127.0.0.1' }],
    spool: { dir: '/var/lib/smarthost/spool' },
    outbox: { dir: '/var/lib/smarthost/outbox' },
    status: { host: '127.0.0.1', port: statusPort },
    retry: { schedule: ['1s'] },
    upstream: (() => {
      const upstream = rig.upstream({ port: upstreamPort });
      return { ...upstream, auth: { ...upstream.auth, clientSecret: '${SMARTHOST_CLIENT_SECRET}' } };
    })(),
  });
  // The container's user reads the mounted files: a folder and files anyone may read.
  await chmod(dir, 0o755);
  const configA = join(dir, 'unreachable.yaml');
  const configB = join(dir, 'smarthost.yaml');
  await writeFile(configA, JSON.stringify(config(deadPort), null, 2), { mode: 0o644 });
  await writeFile(configB, JSON.stringify(config(rig.exo.port), null, 2), { mode: 0o644 });
  process.env.SMARTHOST_CLIENT_SECRET = CLIENT_SECRET;

  const size = Number(await docker('image', 'inspect', '-f', '{{.Size}}', TAG));
  const imageConfig = JSON.parse(await docker('image', 'inspect', '-f', '{{json .Config}}', TAG)) as {
    User: string; Volumes: Record<string, unknown>; Healthcheck: { Test: string[] }; Entrypoint: string[]; Cmd: string[];
  };
  assert.equal(imageConfig.User, `${IMAGE_USER}:${IMAGE_USER}`);
  assert.deepEqual(Object.keys(imageConfig.Volumes), ['/var/lib/smarthost']);
  assert.deepEqual(imageConfig.Healthcheck.Test, ['CMD', '/usr/bin/smarthost', 'healthcheck']);
  assert.deepEqual([...imageConfig.Entrypoint, ...imageConfig.Cmd], ['/usr/bin/smarthost', 'start']);
  ok(`${TAG}: ${(size / 1e6).toFixed(1)} MB, user ${imageConfig.User}, volume /var/lib/smarthost, HEALTHCHECK ${imageConfig.Healthcheck.Test.slice(1).join(' ')}`);

  // 1. Accepted while the upstream is unreachable: kept on the volume across containers.
  await docker('volume', 'create', volume);
  const a = await startContainer('a', configA);
  await waitForLog(a, 'smarthost listening');
  const firstReply = await send(smtpPort, 'kept on the volume');
  const id = /queued as (\S+)/.exec(firstReply)?.[1];
  assert.ok(id, `expected "250 2.0.0 Ok: queued as ID", got ${firstReply}`);
  assert.match(firstReply, /^250 2\.0\.0 /);
  const mountpoint = await docker('volume', 'inspect', '-f', '{{.Mountpoint}}', volume);
  // The first attempt's state, written next to the message once the upstream refused the connection.
  const stateFile = join(mountpoint, 'spool', 'queue', `${id}.state.json`);
  await pollUntil(() => stat(stateFile).then(() => true, () => false), WAIT_MS, `${stateFile} after the first attempt`, 250);
  const { lastError } = JSON.parse(await readFile(stateFile, 'utf8')) as { lastError: string };
  const queued = await readdir(join(mountpoint, 'spool', 'queue'));
  assert.ok(queued.includes(`${id}.msg`), `spool/queue on the volume holds ${queued.join(', ')}`);
  await docker('stop', a);
  assert.equal(await docker('inspect', '-f', '{{.State.ExitCode}}', a), '0');
  ok(`container A: "${firstReply}"; attempt failed ("${lastError}"); ${id}.msg in spool/queue on volume ${volume}; stopped with exit code 0`);

  // 2. A new container on the same volume delivers it, and what is sent to it.
  const b = await startContainer('b', configB);
  const [kept] = await rig.exo.waitForMessages(1, WAIT_MS);
  assert.deepEqual([kept!.mailFrom, kept!.rcptTo, kept!.auth.method, kept!.auth.user], ['scanner@contoso.com', ['you@contoso.com'], 'XOAUTH2', 'relay@contoso.com']);
  assert.match(kept!.raw.toString('latin1'), /^Subject: kept on the volume$/m);
  const secondReply = await send(smtpPort, 'sent to the new container');
  assert.match(secondReply, /^250 2\.0\.0 Ok: queued as /);
  const both = await rig.exo.waitForMessages(2, WAIT_MS);
  assert.match(both[1]!.raw.toString('latin1'), /^Subject: sent to the new container$/m);
  ok(`container B: delivered A's message and "${secondReply}" to the fake Exchange Online (XOAUTH2 as relay@contoso.com, secret from SMARTHOST_CLIENT_SECRET)`);

  // 3. Healthy by its own HEALTHCHECK; not root; files on the volume are the image user's.
  await pollUntil(async () => (await docker('inspect', '-f', '{{.State.Health.Status}}', b)) === 'healthy', WAIT_MS, `${b} healthy`, 250);
  const health = JSON.parse(await docker('inspect', '-f', '{{json .State.Health}}', b)) as { Log: { ExitCode: number; Output: string }[] };
  // Docker stays healthy through fewer than --retries failed probes: the passing one is what counts.
  const passed = health.Log.filter((probe) => probe.ExitCode === 0).at(-1);
  assert.equal(passed?.Output.trim(), `healthy: http://127.0.0.1:${statusPort}/readyz answered 200 ready`);
  ok(`container B healthy: "${passed.Output.trim()}"`);
  const pid = await docker('inspect', '-f', '{{.State.Pid}}', b);
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const ids = (field: string) => /^(\w+):\s+(\d+)\s+(\d+)/m.exec(status.split('\n').find((line) => line.startsWith(`${field}:`)) ?? '')?.slice(2, 4);
  assert.deepEqual(ids('Uid'), [String(IMAGE_USER), String(IMAGE_USER)]);
  assert.deepEqual(ids('Gid'), [String(IMAGE_USER), String(IMAGE_USER)]);
  assert.match(status, /^CapEff:\s+0{16}$/m);
  assert.match(status, /^NoNewPrivs:\s+1$/m);
  assert.equal(await docker('inspect', '-f', '{{.HostConfig.ReadonlyRootfs}}', b), 'true');
  const historyDir = join(mountpoint, 'spool', 'history');
  const history = await readdir(historyDir);
  assert.ok(history.includes(`${id}.history.jsonl`), `spool/history holds ${history.join(', ')}`);
  assert.equal((await stat(join(historyDir, `${id}.history.jsonl`))).uid, IMAGE_USER);
  assert.deepEqual(await readdir(join(mountpoint, 'spool', 'queue')), []);
  ok(`container B: uid/gid ${IMAGE_USER}, no capabilities, no-new-privileges, read-only root; ${id}'s history on the volume owned by ${IMAGE_USER}, queue empty`);
  const { stdout, stderr } = await run('docker', ['logs', b]);
  assert.ok(!(stdout + stderr).includes(CLIENT_SECRET), 'the client secret appears in the logs');
  ok('the client secret is not in the container logs');
  await docker('stop', b);
  assert.equal(await docker('inspect', '-f', '{{.State.ExitCode}}', b), '0');

  // 4. The built-in config on the bridge: a published port, the stranger refused.
  const published = await freePort();
  const c = `${NAME}-c`;
  containers.push(c);
  await docker('run', '-d', '--name', c, '--read-only', '-p', `127.0.0.1:${published}:2525`, TAG);
  await waitForLog(c, 'smarthost listening');
  const refused = await greeting(published);
  assert.match(refused, /^554 5\.7\.1 /);
  ok(`built-in config on the bridge (127.0.0.1:${published} -> 2525): a connection from the bridge gateway gets "${refused}"`);
  process.stdout.write('all checks passed\n');
} catch (error) {
  process.stdout.write(`not ok - ${(error as Error).message}\n`);
  for (const name of containers) {
    const logs = await run('docker', ['logs', '--tail', '20', name]).catch(() => ({ stdout: '', stderr: '' }));
    process.stdout.write(`--- last logs of ${name}\n${logs.stdout}${logs.stderr}`);
  }
  process.exitCode = 1;
} finally {
  for (const name of containers) await docker('rm', '-f', '-v', name).catch(() => undefined);
  await docker('volume', 'rm', volume).catch(() => undefined);
  await rig.close();
  await rm(dir, { recursive: true, force: true });
}
