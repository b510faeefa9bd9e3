import { execFile, execFileSync } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { pollUntil } from '../../testbed/helpers/pollUntil.ts';
import { freePort } from '../../testbed/helpers/freePort.ts';

const run = promisify(execFile);

/**
 * A Postfix relay configured the classic way, as its own instance: a private config_directory and
 * queue_directory under a temporary directory, listening on loopback only on a high port,
 * relaying everything from 127.0.0.0/8 to a relayhost with mandatory TLS and SASL AUTH LOGIN.
 * Durability is Postfix's default: the queue file is fsync'd before the 250.
 */
export interface PostfixTools {
  postfix: string;
  postconf: string;
  postmap: string;
  version: string;
  /** Something that will probably make the relay fail, e.g. no SASL LOGIN plugin. */
  warning?: string;
}

function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The Postfix commands, or why Postfix cannot be measured here. */
export function findPostfix(): PostfixTools | { missing: string } {
  const postfix = which('postfix');
  const postconf = which('postconf');
  const postmap = which('postmap');
  if (!postfix || !postconf || !postmap) return { missing: 'Postfix is not installed (apt-get install postfix)' };
  if (process.getuid?.() !== 0) return { missing: 'Postfix is installed, but starting an instance needs root' };
  let version: string;
  try {
    version = execFileSync(postconf, ['-dh', 'mail_version'], { encoding: 'utf8' }).trim();
  } catch (error) {
    return { missing: `postconf failed: ${String(error)}` };
  }
  // Postfix's SASL client is Cyrus SASL; AUTH LOGIN needs its LOGIN plugin (Debian: libsasl2-modules).
  const pluginDirs = ['/usr/lib/x86_64-linux-gnu/sasl2', '/usr/lib/aarch64-linux-gnu/sasl2', '/usr/lib64/sasl2', '/usr/lib/sasl2', '/usr/local/lib/sasl2'];
  const hasLogin = pluginDirs.some((dir) => {
    try {
      return readdirSync(dir).some((name) => name.startsWith('liblogin.so'));
    } catch {
      return false;
    }
  });
  const warning = hasLogin ? undefined : 'no Cyrus SASL LOGIN plugin found (apt-get install libsasl2-modules): Postfix will not authenticate to the fake, so it will not deliver';
  return { postfix, postconf, postmap, version, ...(warning ? { warning } : {}) };
}

export interface RelayTarget {
  port: number;
  user: string;
  password: string;
  caPem: string;
}

export interface PostfixInstance {
  port: number;
  configDir: string;
  /** The instance's queue_directory. */
  queueDir: string;
  /** The master process now (every other Postfix process of the instance is its child). */
  masterPid(): number | undefined;
  /** The main.cf written, for the record. */
  mainCf: string;
  maillogTail(lines?: number): string;
  stop(): Promise<void>;
}

/** Instances started and not yet stopped, so an interrupted run can still stop them. */
const running = new Map<string, { tools: PostfixTools; pid: () => number | undefined }>();


export function mainCf(dir: string, port: number, target: RelayTarget): string {
  return `# Postfix relay for the smarthost benchmark: its own instance, the classic relayhost set-up.
compatibility_level = 3.6
queue_directory = ${dir}/queue
data_directory = ${dir}/data
myhostname = postfix-bench.localdomain
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
message_size_limit = 41943040
syslog_name = postfix-bench
maillog_file_prefixes = ${dir}
maillog_file = ${dir}/maillog

# Everything goes to the smart host, over STARTTLS (mandatory), authenticated with AUTH LOGIN.
relayhost = [127.0.0.1]:${target.port}
smtp_tls_security_level = encrypt
smtp_tls_CAfile = ${dir}/etc/upstream-ca.pem
smtp_tls_session_cache_database = btree:\${data_directory}/smtp_scache
smtp_sasl_auth_enable = yes
smtp_sasl_password_maps = hash:${dir}/etc/sasl_passwd
smtp_sasl_security_options = noanonymous
smtp_sasl_tls_security_options = noanonymous
smtp_sasl_mechanism_filter = login
`;
}

/** The stock service list, every daemon outside a chroot (a private queue has no chroot files), smtpd on our port. */
export function masterCf(port: number): string {
  return `# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:${port} inet n    -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;
}

function pidOf(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dir, 'queue', 'pid', 'master.pid'), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    readFileSync(`/proc/${pid}/stat`);
    return pid;
  } catch {
    return undefined;
  }
}

/** `pollUntil` as a yes/no: these waits fall back to a harder step instead of failing. */
async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  return pollUntil(condition, timeoutMs, 'postfix').then(
    () => true,
    () => false,
  );
}

function answersSmtp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(2_000, () => socket.destroy());
    socket.once('data', (chunk: Buffer) => {
      resolve(chunk.toString('latin1').startsWith('220'));
      socket.end('QUIT\r\n');
    });
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
  });
}

export async function startPostfix(tools: PostfixTools, target: RelayTarget): Promise<PostfixInstance> {
  // Under /tmp but readable: Postfix daemons run as the postfix user once started.
  const dir = await mkdtemp(join(tmpdir(), 'smarthost-bench-postfix-'));
  await chmod(dir, 0o755);
  const etc = join(dir, 'etc');
  await mkdir(etc, { mode: 0o755 });
  // postfix(1) creates the queue's subdirectories, with their owners, at start; not the queue itself.
  await mkdir(join(dir, 'queue'), { mode: 0o755 });
  const port = await freePort();
  const main = mainCf(dir, port, target);
  await writeFile(join(etc, 'main.cf'), main);
  await writeFile(join(etc, 'master.cf'), masterCf(port));
  await writeFile(join(etc, 'upstream-ca.pem'), target.caPem);
  await writeFile(join(etc, 'sasl_passwd'), `[127.0.0.1]:${target.port} ${target.user}:${target.password}\n`, { mode: 0o600 });
  const cleanUp = async () => {
    running.delete(dir);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await run(tools.postmap, ['-c', etc, `hash:${join(etc, 'sasl_passwd')}`]);
    running.set(dir, { tools, pid: () => pidOf(dir) });
    await run(tools.postfix, ['-c', etc, 'start']);
    if (!(await waitUntil(async () => pidOf(dir) !== undefined && (await answersSmtp(port)), 15_000))) {
      throw new Error(`Postfix did not answer on 127.0.0.1:${port}; maillog:\n${tail(dir, 20)}`);
    }
  } catch (error) {
    await stopInstance(tools, dir);
    await cleanUp();
    throw error;
  }
  return {
    port,
    configDir: etc,
    queueDir: join(dir, 'queue'),
    mainCf: main,
    masterPid: () => pidOf(dir),
    maillogTail: (lines = 20) => tail(dir, lines),
    async stop() {
      await stopInstance(tools, dir);
      await cleanUp();
    },
  };
}

function tail(dir: string, lines: number): string {
  try {
    return readFileSync(join(dir, 'maillog'), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no maillog)';
  }
}

async function stopInstance(tools: PostfixTools, dir: string): Promise<void> {
  const etc = join(dir, 'etc');
  const pid = pidOf(dir);
  if (pid === undefined) return;
  await run(tools.postfix, ['-c', etc, 'stop']).catch(() => undefined);
  if (await waitUntil(() => pidOf(dir) === undefined, 10_000)) return;
  await run(tools.postfix, ['-c', etc, 'abort']).catch(() => undefined);
  if (await waitUntil(() => pidOf(dir) === undefined, 5_000)) return;
  killTree(pid);
}

function killTree(pid: number): void {
  try {
    const children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
    process.kill(pid, 'SIGKILL');
    for (const child of children) process.kill(child, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** Stops every instance still running, synchronously (for exit and signal handlers). */
export function abortPostfixNow(): void {
  for (const [dir, { tools, pid }] of running) {
    const master = pid();
    try {
      execFileSync(tools.postfix, ['-c', join(dir, 'etc'), 'abort'], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // fall through to kill
    }
    if (master !== undefined) killTree(master);
    try {
      execFileSync('rm', ['-rf', dir]);
    } catch {
      // best effort
    }
  }
  running.clear();
}

